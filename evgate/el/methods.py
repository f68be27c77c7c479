"""Methods: per-type tables (``STRING_METHODS``, ``LIST_METHODS``, ``MAP_METHODS``,
``ANY_METHODS``) of (min_args, max_args, implementation(target, args, pos)); a method not in
a table does not exist for expressions."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

from .regex import regex_for
from .values import (_BYTES_TYPES, _K_MAPPING, _K_SEQUENCE, _K_STRING, _as_string,
                     _check_length, _decode, _fail, _kind, _list_index, el_equals, to_text,
                     type_name)


# ---------------------------------------------------------------------------------------
# Methods: per-type tables of (min_args, max_args, implementation(target, args, pos))

MethodImpl = Callable[[Any, list, Optional[int]], Any]


def _str_arg(value: Any, method: str, pos: Optional[int]) -> str:
    text = _as_string(value)
    if text is None:
        raise _fail(f"{method}() needs a string argument, got {type_name(value)}", pos)
    return text


def _int_arg(value: Any, method: str, pos: Optional[int]) -> int:
    if type(value) is not int:
        raise _fail(f"{method}() needs an integer argument, got {type_name(value)}", pos)
    return value


def _s_starts_with(s: str, args: list, pos: Optional[int]) -> bool:
    prefix = _str_arg(args[0], "startsWith", pos)
    if len(args) > 1:
        offset = _int_arg(args[1], "startsWith", pos)
        if offset < 0 or offset > len(s):
            return False
        return s.startswith(prefix, offset)
    return s.startswith(prefix)


def _s_index_of(s: str, args: list, pos: Optional[int]) -> int:
    needle = _str_arg(args[0], "indexOf", pos)
    start = _int_arg(args[1], "indexOf", pos) if len(args) > 1 else 0
    return s.find(needle, max(start, 0))


def _s_last_index_of(s: str, args: list, pos: Optional[int]) -> int:
    return s.rfind(_str_arg(args[0], "lastIndexOf", pos))


def _s_substring(s: str, args: list, pos: Optional[int]) -> str:
    begin = _int_arg(args[0], "substring", pos)
    end = _int_arg(args[1], "substring", pos) if len(args) > 1 else len(s)
    if begin < 0 or end > len(s) or begin > end:
        raise _fail(f"substring({begin}, {end}) out of bounds (length {len(s)})", pos)
    return s[begin:end]


def _s_char_at(s: str, args: list, pos: Optional[int]) -> str:
    return s[_list_index(len(s), _int_arg(args[0], "charAt", pos), pos)]


def _s_replace(s: str, args: list, pos: Optional[int]) -> str:
    old = _str_arg(args[0], "replace", pos)
    new = _str_arg(args[1], "replace", pos)
    # Java's String.replace(CharSequence, CharSequence): literal, every occurrence.
    count = s.count(old)
    _check_length(len(s) + count * (len(new) - len(old)), pos)
    return s.replace(old, new)


def _s_concat(s: str, args: list, pos: Optional[int]) -> str:
    other = _str_arg(args[0], "concat", pos)
    _check_length(len(s) + len(other), pos)
    return s + other


def _s_case(convert: Callable[[str], str]) -> MethodImpl:
    def change_case(s: str, args: list, pos: Optional[int]) -> str:
        result = convert(s)
        _check_length(len(result), pos)
        return result
    return change_case


# Java's String.trim() removes every code point up to U+0020 from both ends.
_TRIM_CHARS = "".join(chr(i) for i in range(33))


def _s_equals_ignore_case(s: str, args: list, pos: Optional[int]) -> bool:
    other = _as_string(args[0])
    return other is not None and len(other) == len(s) and s.lower() == other.lower()


def _s_matches(s: str, args: list, pos: Optional[int]) -> bool:
    return regex_for(args[0], pos).fullmatch(s, pos)


def _s_split(s: str, args: list, pos: Optional[int]) -> list:
    return regex_for(args[0], pos).split(s, pos)


STRING_METHODS: dict[str, tuple[int, int, MethodImpl]] = {
    "startsWith": (1, 2, _s_starts_with),
    "endsWith": (1, 1, lambda s, a, p: s.endswith(_str_arg(a[0], "endsWith", p))),
    "contains": (1, 1, lambda s, a, p: _str_arg(a[0], "contains", p) in s),
    "matches": (1, 1, _s_matches),
    "toLowerCase": (0, 0, _s_case(str.lower)),
    "toUpperCase": (0, 0, _s_case(str.upper)),
    "trim": (0, 0, lambda s, a, p: s.strip(_TRIM_CHARS)),
    "length": (0, 0, lambda s, a, p: len(s)),
    "isEmpty": (0, 0, lambda s, a, p: not s),
    "isBlank": (0, 0, lambda s, a, p: not s.strip()),
    "substring": (1, 2, _s_substring),
    "charAt": (1, 1, _s_char_at),
    "indexOf": (1, 2, _s_index_of),
    "lastIndexOf": (1, 1, _s_last_index_of),
    "replace": (2, 2, _s_replace),
    "split": (1, 1, _s_split),
    "equals": (1, 1, lambda s, a, p: _as_string(a[0]) == s),
    "equalsIgnoreCase": (1, 1, _s_equals_ignore_case),
    "concat": (1, 1, _s_concat),
    "toString": (0, 0, lambda s, a, p: s),
}


def _l_get(items: Sequence, args: list, pos: Optional[int]) -> Any:
    return items[_list_index(len(items), args[0], pos)]


def _l_index_of(items: Sequence, args: list, pos: Optional[int]) -> int:
    for i, item in enumerate(items):
        if el_equals(item, args[0]):
            return i
    return -1


LIST_METHODS: dict[str, tuple[int, int, MethodImpl]] = {
    "size": (0, 0, lambda xs, a, p: len(xs)),
    "isEmpty": (0, 0, lambda xs, a, p: len(xs) == 0),
    "contains": (1, 1, lambda xs, a, p: any(el_equals(x, a[0]) for x in xs)),
    "get": (1, 1, _l_get),
    "indexOf": (1, 1, _l_index_of),
}


def _m_get(mapping: Mapping, args: list, pos: Optional[int]) -> Any:
    try:
        return mapping.get(args[0])
    except TypeError:
        raise _fail(f"{type_name(args[0])} cannot be a map key", pos) from None


def _m_contains_key(mapping: Mapping, args: list, pos: Optional[int]) -> bool:
    try:
        return args[0] in mapping
    except TypeError:
        return False


MAP_METHODS: dict[str, tuple[int, int, MethodImpl]] = {
    "size": (0, 0, lambda m, a, p: len(m)),
    "isEmpty": (0, 0, lambda m, a, p: len(m) == 0),
    "containsKey": (1, 1, _m_contains_key),
    "containsValue": (1, 1, lambda m, a, p: any(el_equals(v, a[0]) for v in m.values())),
    "get": (1, 1, _m_get),
}

# Methods of every non-null value (after the type's own table).
ANY_METHODS: dict[str, tuple[int, int, MethodImpl]] = {
    "toString": (0, 0, lambda v, a, p: to_text(v)),
    "equals": (1, 1, lambda v, a, p: el_equals(v, a[0])),
}

_TABLES = (STRING_METHODS, LIST_METHODS, MAP_METHODS, ANY_METHODS)

# Every method name with the argument counts it accepts on some type: the parser refuses
# other names (``getClass``, ``exec``...) at compile time.
METHOD_ARITIES: dict[str, frozenset[int]] = {}
for _table in _TABLES:
    for _name, (_lo, _hi, _impl) in _table.items():
        METHOD_ARITIES[_name] = METHOD_ARITIES.get(_name, frozenset()) | frozenset(
            range(_lo, _hi + 1))
del _table, _name, _lo, _hi, _impl


def call_method(target: Any, name: str, args: list, pos: Optional[int]) -> Any:
    """``target.name(args)`` dispatched on the target's type through the tables above."""
    t = type(target)
    if t is str:
        table = STRING_METHODS
    elif t is list or t is tuple:
        table = LIST_METHODS
    elif t is dict:
        table = MAP_METHODS
    elif target is None:
        raise _fail(f"cannot call method '{name}' on null", pos)
    elif t in _BYTES_TYPES:
        target = _decode(target)
        table = STRING_METHODS
    else:
        kind = _kind(t)
        if kind == _K_MAPPING:
            table = MAP_METHODS
        elif kind == _K_SEQUENCE:
            table = LIST_METHODS
        elif kind == _K_STRING:
            target = str.__str__(target)
            table = STRING_METHODS
        else:
            table = None
    entry = table.get(name) if table is not None else None
    if entry is None:
        entry = ANY_METHODS.get(name)
        if entry is None:
            raise _fail(f"method '{name}' is not available on {type_name(target)}", pos)
    low, high, impl = entry
    if not low <= len(args) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise _fail(f"method '{name}' of {type_name(target)} takes {expected} "
                    f"argument(s), got {len(args)}", pos)
    return impl(target, args, pos)
