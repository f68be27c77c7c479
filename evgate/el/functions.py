"""What an expression can do at run time: values, property access, methods, functions.

Everything here is a whitelist. Property access reads Mapping keys or the mapping that an
object hands out through ``el_properties()``; methods are looked up in per-type tables
(``STRING_METHODS``, ``LIST_METHODS``, ``MAP_METHODS``, ``ANY_METHODS``); functions live in
``FUNCTIONS``. Nothing calls ``getattr`` with a name taken from an expression.

The object protocol
-------------------
An object that is not a ``Mapping`` is opaque to expressions unless its class defines::

    def el_properties(self) -> Mapping[str, Any]: ...

which returns the properties an expression may read (``#message.content``,
``#request.headers``...). The mapping is read with ``mapping[name]``; a name that is not
in it is an evaluation error (a typo in an expression should be loud). It is called once
per property access, so keep it cheap (build a dict, or return a lazy Mapping).

Limits (module constants, documented in docs/expression-language.md)
--------------------------------------------------------------------
``MAX_STRING_LENGTH``   longest string an operation may produce (``+``, ``*``,
                        ``concat``, ``replace``, case changes, templates).
``MAX_COLLECTION_SIZE`` most elements a method may produce (``split``).
``MAX_REGEX_LENGTH``    longest regular expression (``matches``, ``split``).
``REGEX_COST_BUDGET``   worst-case backtracking steps a regex may take on a subject (see
                        ``compile_regex``); a larger subject is refused before matching.
``MAX_JSON_PATH_LENGTH`` longest JSON path given to ``#jsonPath``.
"""
from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Optional

from .errors import ExpressionEvaluationError
from .lexer import MAX_INT, MIN_INT

try:  # Python 3.11+ (python_requires >= 3.11); sre_parse is the deprecated alias.
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

__all__ = [
    "MAX_STRING_LENGTH", "MAX_COLLECTION_SIZE", "MAX_REGEX_LENGTH", "REGEX_COST_BUDGET",
    "MAX_JSON_PATH_LENGTH", "Scope", "Function", "FUNCTIONS", "STRING_METHODS",
    "LIST_METHODS", "MAP_METHODS", "ANY_METHODS", "METHOD_ARITIES", "InvalidArgument",
    "SafeRegex", "compile_regex", "JsonPath", "compile_json_path", "type_name", "to_text",
    "template_text", "el_equals", "get_property", "get_index", "call_method",
]

MAX_STRING_LENGTH = 1024 * 1024
MAX_COLLECTION_SIZE = 100_000
MAX_REGEX_LENGTH = 500
REGEX_COST_BUDGET = 10_000_000
MAX_REGEX_DEGREE = 6
MAX_JSON_PATH_LENGTH = 1_000


class InvalidArgument(ValueError):
    """A function or method argument that can be checked before evaluation is invalid
    (a bad regular expression or JSON path). The compiler turns it into an
    ``ExpressionSyntaxError`` when the argument is a literal, the evaluator into an
    ``ExpressionEvaluationError`` otherwise."""


class Scope:
    """The state of one evaluation: the variables and a cache (parsed JSON documents).

    ``cache`` may be a dict supplied by the caller and shared by several evaluations over
    the same data (one message through many subscription filters): each JSON content is
    then parsed once. Entries keep a reference to their key object, so ids stay valid.
    """

    __slots__ = ("variables", "cache")

    def __init__(self, variables: Mapping[str, Any], cache: Optional[dict] = None) -> None:
        self.variables = variables
        self.cache = cache


def _fail(message: str, pos: Optional[int]) -> ExpressionEvaluationError:
    return ExpressionEvaluationError(message, pos)


# ---------------------------------------------------------------------------------------
# Values

_BYTES_TYPES = (bytes, bytearray, memoryview)
_MISSING = object()
_NUMBER_TYPES = (int, float)


def _decode(value: Any) -> str:
    """Bytes are text in UTF-8 (invalid sequences become U+FFFD)."""
    return bytes(value).decode("utf-8", "replace")


def type_name(value: Any) -> str:
    """How error messages name the type of a value."""
    if value is None:
        return "null"
    t = type(value)
    if t is bool:
        return "boolean"
    if t is int:
        return "integer"
    if t is float:
        return "number"
    if t is str:
        return "string"
    if t in _BYTES_TYPES:
        return "bytes"
    if t is list or t is tuple:
        return "list"
    if t is dict:
        return "map"
    kind = _kind(t)
    if kind == _K_MAPPING:
        return "map"
    if kind == _K_SEQUENCE:
        return "list"
    if kind == _K_STRING:
        return "string"
    return t.__name__  # the class's own name; reading a type's name exposes nothing


def _java_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == math.inf:
        return "Infinity"
    if value == -math.inf:
        return "-Infinity"
    return repr(value)


def to_text(value: Any) -> str:
    """Spring's ``String.valueOf`` as used by ``+``: null is ``"null"``, booleans are
    ``true``/``false``, lists ``[a, b]``, maps ``{k=v}``, bytes are decoded as UTF-8."""
    t = type(value)
    if t is str:
        return value
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    if t is float:
        return _java_float(value)
    if t in _BYTES_TYPES:
        return _decode(value)
    kind = _kind(t)
    if kind == _K_STRING:
        return str.__str__(value)
    if t is list or t is tuple or kind == _K_SEQUENCE:
        return "[" + ", ".join(to_text(item) for item in value) + "]"
    if t is dict or kind == _K_MAPPING:
        return "{" + ", ".join(f"{to_text(k)}={to_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def template_text(value: Any) -> str:
    """How a ``{expr}`` part of a template with text around it is rendered: like
    ``to_text`` except that null renders as nothing (Spring's composite templates)."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    return to_text(value)


def _as_string(value: Any) -> Optional[str]:
    """The value as text if it is a string or bytes, else None."""
    t = type(value)
    if t is str:
        return value
    if t in _BYTES_TYPES:
        return _decode(value)
    if isinstance(value, str):
        return str.__str__(value)
    return None


def _is_number(value: Any) -> bool:
    t = type(value)
    return t is int or t is float


def el_equals(a: Any, b: Any) -> bool:
    """``==``: numbers compare numerically (``1 == 1.0``), booleans are not numbers,
    bytes compare as UTF-8 text with strings, lists and maps compare element-wise, values
    of different types are simply not equal."""
    ta = type(a)
    tb = type(b)
    if ta is tb and (ta is str or ta is int or ta is bool or ta is float or a is None):
        return a == b
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a == b
    if a is None or b is None:
        return False
    sa = _as_string(a)
    if sa is not None:
        sb = _as_string(b)
        return sb is not None and sa == sb
    ka = _kind(ta)
    kb = _kind(tb)
    if ka == _K_SEQUENCE and kb == _K_SEQUENCE:
        return len(a) == len(b) and all(el_equals(x, y) for x, y in zip(a, b))
    if ka == _K_MAPPING and kb == _K_MAPPING:
        if len(a) != len(b):
            return False
        for key, value in a.items():
            try:
                other = b.get(key, _MISSING)
            except TypeError:
                return False
            if other is _MISSING or not el_equals(value, other):
                return False
        return True
    if ta is tb and ka == _K_OTHER:
        return (a == b) is True
    return False


def ordering_operands(a: Any, b: Any, op: str, pos: Optional[int]) -> tuple[Any, Any]:
    """The two operands of ``< <= > >=`` made comparable, or an evaluation error:
    numbers with numbers, strings (and bytes) with strings, booleans with booleans."""
    ta = type(a)
    tb = type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a, b
    sa = _as_string(a)
    if sa is not None:
        sb = _as_string(b)
        if sb is not None:
            return sa, sb
    elif ta is bool and tb is bool:
        return a, b
    raise _fail(f"cannot compare {type_name(a)} and {type_name(b)} with '{op}'", pos)


# ---------------------------------------------------------------------------------------
# Arithmetic (Spring semantics where sensible, 64-bit integers, no silent overflow)

def _int_result(value: int, pos: Optional[int]) -> int:
    if value > MAX_INT or value < MIN_INT:
        raise _fail("integer overflow", pos)
    return value


def _check_length(length: int, pos: Optional[int]) -> None:
    if length > MAX_STRING_LENGTH:
        raise _fail(f"string result too large ({length} characters, limit "
                    f"{MAX_STRING_LENGTH})", pos)


def _float(value: Any, pos: Optional[int]) -> float:
    try:
        return float(value)
    except OverflowError:
        raise _fail("number too large", pos) from None


def add(a: Any, b: Any, pos: Optional[int]) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        return _int_result(a + b, pos)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return _float(a, pos) + _float(b, pos)
    if ta is str or tb is str or ta in _BYTES_TYPES or tb in _BYTES_TYPES \
            or isinstance(a, str) or isinstance(b, str):
        left = to_text(a)
        right = to_text(b)
        _check_length(len(left) + len(right), pos)
        return left + right
    raise _fail(f"cannot add {type_name(a)} and {type_name(b)}", pos)


def subtract(a: Any, b: Any, pos: Optional[int]) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        return _int_result(a - b, pos)
    if _is_number(a) and _is_number(b):
        return _float(a, pos) - _float(b, pos)
    raise _fail(f"cannot subtract {type_name(b)} from {type_name(a)}", pos)


def multiply(a: Any, b: Any, pos: Optional[int]) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        return _int_result(a * b, pos)
    if _is_number(a) and _is_number(b):
        return _float(a, pos) * _float(b, pos)
    text = _as_string(a)
    if text is not None and tb is int:
        # Spring: 'ab' * 3 repeats the string. Check the size before building it.
        if b < 0:
            raise _fail("cannot repeat a string a negative number of times", pos)
        _check_length(len(text) * b, pos)
        return text * b
    raise _fail(f"cannot multiply {type_name(a)} by {type_name(b)}", pos)


def divide(a: Any, b: Any, pos: Optional[int]) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        if b == 0:
            raise _fail("division by zero", pos)
        # Java integer division truncates toward zero: 7 / -2 == -3.
        quotient = abs(a) // abs(b)
        return _int_result(quotient if (a < 0) == (b < 0) else -quotient, pos)
    if _is_number(a) and _is_number(b):
        if b == 0:
            raise _fail("division by zero", pos)
        return _float(a, pos) / _float(b, pos)
    raise _fail(f"cannot divide {type_name(a)} by {type_name(b)}", pos)


def remainder(a: Any, b: Any, pos: Optional[int]) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        if b == 0:
            raise _fail("division by zero", pos)
        # Java's remainder takes the sign of the dividend: -7 % 2 == -1.
        rest = abs(a) % abs(b)
        return -rest if a < 0 else rest
    if _is_number(a) and _is_number(b):
        if b == 0:
            raise _fail("division by zero", pos)
        return math.fmod(_float(a, pos), _float(b, pos))
    raise _fail(f"cannot compute the remainder of {type_name(a)} by {type_name(b)}", pos)


ARITHMETIC: dict[str, Callable[[Any, Any, Optional[int]], Any]] = {
    "+": add, "-": subtract, "*": multiply, "/": divide, "%": remainder,
}


def negate(value: Any, pos: Optional[int]) -> Any:
    t = type(value)
    if t is int:
        return _int_result(-value, pos)
    if t is float:
        return -value
    raise _fail(f"cannot negate {type_name(value)}", pos)


def unary_plus(value: Any, pos: Optional[int]) -> Any:
    if _is_number(value):
        return value
    raise _fail(f"unary '+' needs a number, got {type_name(value)}", pos)


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


# ---------------------------------------------------------------------------------------
# Property and index access

_K_MAPPING, _K_SEQUENCE, _K_OBJECT, _K_STRING, _K_OTHER = range(5)
_KIND_CACHE: dict[type, int] = {}


def _kind(t: type) -> int:
    """Classify a type once: Mapping, Sequence, el_properties object, str subclass, other."""
    kind = _KIND_CACHE.get(t)
    if kind is None:
        # A class attribute with a fixed name: the object protocol, not a user-chosen name.
        if callable(getattr(t, "el_properties", None)):
            kind = _K_OBJECT
        elif issubclass(t, Mapping):
            kind = _K_MAPPING
        elif issubclass(t, str):
            kind = _K_STRING
        elif issubclass(t, Sequence) and not issubclass(t, _BYTES_TYPES):
            kind = _K_SEQUENCE
        else:
            kind = _K_OTHER
        if len(_KIND_CACHE) > 4096:  # classes made on the fly must not grow it forever
            _KIND_CACHE.clear()
        _KIND_CACHE[t] = kind
    return kind


def _properties(obj: Any, pos: Optional[int]) -> Mapping:
    props = obj.el_properties()
    if type(props) is not dict and not isinstance(props, Mapping):
        raise _fail(f"{type(obj).__name__}.el_properties() did not return a mapping", pos)
    return props


def get_property(obj: Any, name: str, pos: Optional[int]) -> Any:
    """``obj.name``: a key of a Mapping (missing -> null) or a property of an object that
    implements ``el_properties()`` (missing -> error). Anything else is an error."""
    t = type(obj)
    if t is dict:
        return obj.get(name)
    if obj is None:
        raise _fail(f"cannot read property '{name}' of null", pos)
    kind = _kind(t)
    if kind == _K_MAPPING:
        # Mapping.get, not [], so that a defaultdict is not written to by a read.
        return obj.get(name)
    if kind == _K_OBJECT:
        props = _properties(obj, pos)
        try:
            return props[name]
        except KeyError:
            raise _fail(f"{type(obj).__name__} has no property '{name}'", pos) from None
    raise _fail(f"cannot read property '{name}' of {type_name(obj)}", pos)


def _list_index(size: int, index: Any, pos: Optional[int]) -> int:
    if type(index) is not int:
        raise _fail(f"a list index must be an integer, got {type_name(index)}", pos)
    if index < 0 or index >= size:
        raise _fail(f"index {index} out of bounds (size {size})", pos)
    return index


def get_index(obj: Any, index: Any, pos: Optional[int]) -> Any:
    """``obj[index]``: map key (missing -> null), list or string position (out of bounds
    -> error), or an ``el_properties()`` property by name."""
    t = type(obj)
    try:
        if t is dict:
            return obj.get(index)
        if t is list or t is tuple:
            return obj[_list_index(len(obj), index, pos)]
    except TypeError:  # unhashable key
        raise _fail(f"{type_name(index)} cannot be a map key", pos) from None
    if obj is None:
        raise _fail("cannot index into null", pos)
    if t is str:
        return obj[_list_index(len(obj), index, pos)]
    if t in _BYTES_TYPES:
        text = _decode(obj)
        return text[_list_index(len(text), index, pos)]
    kind = _kind(t)
    if kind == _K_MAPPING:
        try:
            return obj.get(index)
        except TypeError:
            raise _fail(f"{type_name(index)} cannot be a map key", pos) from None
    if kind == _K_SEQUENCE or kind == _K_STRING:
        return obj[_list_index(len(obj), index, pos)]
    if kind == _K_OBJECT:
        if type(index) is not str:
            raise _fail(f"a property name must be a string, got {type_name(index)}", pos)
        return get_property(obj, index, pos)
    raise _fail(f"cannot index into {type_name(obj)}", pos)


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


# ---------------------------------------------------------------------------------------
# Regular expressions without catastrophic backtracking
#
# Python's re backtracks, and cannot be interrupted from inside a greenlet. Rather than a
# timeout, a pattern is analysed once (with re's own parser) and refused when it could take
# exponential time: a variable-length quantifier inside another repeated group, unless the
# inner repeat is a single-character class followed by a character it cannot match
# (`(\d+,)*`, `([a-z]+\.)+` are fine; `(a+)+`, `(\w+\w?)*` are not); alternatives inside a
# repeated group that can start with the same character (`(a|ab)*`); backreferences. The
# remaining patterns take at most about `coefficient * n ** degree` steps on a subject of n
# characters, where `degree` counts the unbounded quantifiers in sequence (`.*a.*` is 2);
# a subject that would exceed REGEX_COST_BUDGET steps is refused before matching.

_SINGLE_CHAR_OPS = frozenset([_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN])
_REPEAT_OPS = frozenset(op for op in (
    getattr(_sre, "MAX_REPEAT", None), getattr(_sre, "MIN_REPEAT", None),
    getattr(_sre, "POSSESSIVE_REPEAT", None)) if op is not None)
_ATOMIC_GROUP = getattr(_sre, "ATOMIC_GROUP", None)
_MAXREPEAT = _sre.MAXREPEAT
_MAX_FINITE_CLASS = 2048

_CATEGORY_TESTS: dict[Any, Callable[[str], bool]] = {
    _sre.CATEGORY_DIGIT: str.isdecimal,
    _sre.CATEGORY_NOT_DIGIT: lambda c: not c.isdecimal(),
    _sre.CATEGORY_SPACE: str.isspace,
    _sre.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    _sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    _sre.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
    _sre.CATEGORY_LINEBREAK: lambda c: c == "\n",
    _sre.CATEGORY_NOT_LINEBREAK: lambda c: c != "\n",
}


class _CharClass:
    """What one single-character item may match: a finite set when known, and a test
    that over-approximates the item (never says False for a character it can match)."""

    __slots__ = ("chars", "test")

    def __init__(self, chars: Optional[frozenset], test: Callable[[str], bool]) -> None:
        self.chars = chars
        self.test = test

    def disjoint(self, other: "_CharClass") -> bool:
        if self.chars is not None:
            return not any(other.test(c) for c in self.chars)
        if other.chars is not None:
            return not any(self.test(c) for c in other.chars)
        return False


def _variants(c: str, ignorecase: bool) -> set:
    return {c, c.lower(), c.upper(), c.swapcase()} if ignorecase else {c}


def _char_class(item: tuple, ignorecase: bool, unicode_classes: bool) -> Optional[_CharClass]:
    op, av = item
    if op is _sre.LITERAL:
        chars = frozenset(_variants(chr(av), ignorecase))
        return _CharClass(chars, chars.__contains__)
    if op is _sre.NOT_LITERAL:
        excluded = chr(av)
        return _CharClass(None, lambda c: c != excluded)
    if op is _sre.ANY:
        return _CharClass(None, lambda c: True)
    if op is not _sre.IN:
        return None
    chars: set = set()
    tests: list = []
    finite = True
    negated = False
    for sub_op, sub_av in av:
        if sub_op is _sre.NEGATE:
            negated = True
        elif sub_op is _sre.LITERAL:
            chars |= _variants(chr(sub_av), ignorecase)
        elif sub_op is _sre.RANGE:
            low, high = sub_av
            if high - low > _MAX_FINITE_CLASS:
                finite = False
                tests.append(lambda c, lo=low, hi=high: any(
                    lo <= ord(v) <= hi for v in _variants(c, True)))
            else:
                for code in range(low, high + 1):
                    chars |= _variants(chr(code), ignorecase)
        elif sub_op is _sre.CATEGORY and unicode_classes and sub_av in _CATEGORY_TESTS:
            finite = False
            tests.append(_CATEGORY_TESTS[sub_av])
        else:
            return _CharClass(None, lambda c: True)
    if negated:
        if not finite:
            return _CharClass(None, lambda c: True)
        # [^...] of literals and ranges: everything outside the (unexpanded) set, which
        # over-approximates the class under IGNORECASE too.
        excluded = frozenset(chars)
        return _CharClass(None, lambda c: c not in excluded)
    frozen = frozenset(chars)
    if finite and len(frozen) <= _MAX_FINITE_CLASS:
        return _CharClass(frozen, frozen.__contains__)
    return _CharClass(None, lambda c: c in frozen or any(test(v) for test in tests
                                                           for v in _variants(c, True)))


class _RegexAnalysis:
    def __init__(self, ignorecase: bool, unicode_classes: bool) -> None:
        self.ignorecase = ignorecase
        self.unicode_classes = unicode_classes

    def first_class(self, items: list) -> Optional[_CharClass]:
        """The class of the first character a sequence must consume, if known."""
        for op, av in items:
            if op is _sre.AT:
                continue
            if op in _SINGLE_CHAR_OPS:
                return _char_class((op, av), self.ignorecase, self.unicode_classes)
            if op is _sre.SUBPATTERN:
                return self.first_class(list(av[3]))
            if op in _REPEAT_OPS and av[0] >= 1:
                return self.first_class(list(av[2]))
            return None
        return None

    def single_char_body(self, body: list) -> Optional[_CharClass]:
        if len(body) == 1 and body[0][0] in _SINGLE_CHAR_OPS:
            return _char_class(body[0], self.ignorecase, self.unicode_classes)
        return None

    def sequence(self, items: list, follow: Optional[_CharClass], inside: bool
                 ) -> tuple[float, int]:
        coefficient, degree = 1.0, 0
        for index, (op, av) in enumerate(items):
            if index + 1 < len(items):
                nxt = items[index + 1]
                after = (_char_class(nxt, self.ignorecase, self.unicode_classes)
                         if nxt[0] in _SINGLE_CHAR_OPS else None)
            else:
                after = follow
            c, d = self.item(op, av, after, inside)
            coefficient *= c
            degree += d
            if coefficient > 1e300:
                coefficient = math.inf
        return coefficient, degree

    def item(self, op: Any, av: Any, follow: Optional[_CharClass], inside: bool
             ) -> tuple[float, int]:
        if op in _SINGLE_CHAR_OPS or op is _sre.AT:
            return 1.0, 0
        if op is _sre.SUBPATTERN:
            return self.sequence(list(av[3]), follow, inside)
        if op is _ATOMIC_GROUP:
            return self.sequence(list(av), follow, inside)
        if op is _sre.ASSERT or op is _sre.ASSERT_NOT:
            return self.sequence(list(av[1]), None, inside)
        if op is _sre.BRANCH:
            branches = [list(b) for b in av[1]]
            costs = [self.sequence(b, follow, inside) for b in branches]
            degree = max(d for _, d in costs)
            firsts = [self.first_class(b) for b in branches]
            disjoint = all(f is not None for f in firsts) and all(
                firsts[i].disjoint(firsts[j])  # type: ignore[union-attr]
                for i in range(len(firsts)) for j in range(i + 1, len(firsts)))
            if disjoint:
                return max(c for c, _ in costs), degree
            if inside:
                raise InvalidArgument(
                    "alternatives inside a repeated group must start with different "
                    "characters (the pattern could take exponential time)")
            return sum(c for c, _ in costs), degree
        if op in _REPEAT_OPS:
            low, high, body = av[0], av[1], list(av[2])
            if low == high:
                c, d = self.sequence(body, self.first_class(body) or follow,
                                     inside or high > 1)
                return _power(c, high), d * high
            if inside:
                # A variable repeat inside a repeated group: fine only when it is a
                # single-character class that cannot eat the character after it.
                own = self.single_char_body(body)
                if own is not None and follow is not None and own.disjoint(follow):
                    return 1.0, 0
                raise InvalidArgument(
                    "nested quantifiers are not allowed (the pattern could take "
                    "exponential time); make the inner repeat a character class "
                    "followed by a character it cannot match")
            first = self.first_class(body)
            if high == _MAXREPEAT:
                c, d = self.sequence(body, first, True)
                if c > 1 or d > 0:
                    raise InvalidArgument("nested quantifiers are not allowed (the pattern "
                                          "could take exponential time)")
                return 1.0, 1
            c, d = self.sequence(body, first, high > 1)
            return (high - low + 1) * _power(c, high), d * high
        if op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
            raise InvalidArgument("backreferences are not allowed in regular expressions")
        raise InvalidArgument(f"unsupported regular expression construct ({op})")


def _power(base: float, exponent: int) -> float:
    if base <= 1.0:
        return 1.0
    try:
        return min(base ** exponent, math.inf)
    except OverflowError:
        return math.inf


def _local_flags(items: Any) -> int:
    """The union of the inline flags of every group, e.g. ``(?i:...)``: the analysis
    applies them to the whole pattern, which only makes it more cautious."""
    flags = 0
    stack = [items]
    while stack:
        for op, av in stack.pop():
            if op is _sre.SUBPATTERN:
                flags |= av[1]
                stack.append(av[3])
            elif op is _sre.BRANCH:
                stack.extend(av[1])
            elif op in _REPEAT_OPS:
                stack.append(av[2])
            elif op is _ATOMIC_GROUP:
                stack.append(av)
            elif op is _sre.ASSERT or op is _sre.ASSERT_NOT:
                stack.append(av[1])
            elif op is _sre.GROUPREF_EXISTS:
                stack.extend(x for x in av[1:] if x is not None)
    return flags


class SafeRegex:
    """A regular expression that passed the analysis above, with its cost model."""

    __slots__ = ("pattern", "compiled", "coefficient", "degree", "literal")

    def __init__(self, pattern: str, compiled: re.Pattern, coefficient: float, degree: int,
                 literal: Optional[str]) -> None:
        self.pattern = pattern
        self.compiled = compiled
        self.coefficient = coefficient
        self.degree = degree
        self.literal = literal      # the pattern is plain text (fast path for split)

    def check(self, length: int, search: bool, pos: Optional[int]) -> None:
        if length > MAX_STRING_LENGTH:
            raise _fail(f"subject of a regular expression longer than {MAX_STRING_LENGTH} "
                        "characters", pos)
        degree = self.degree + (1 if search else 0)
        if degree and self.coefficient * float(length + 1) ** degree > REGEX_COST_BUDGET:
            raise _fail(f"regular expression {self.pattern!r} is too costly for a subject "
                        f"of {length} characters", pos)

    def fullmatch(self, subject: Any, pos: Optional[int]) -> bool:
        text = _as_string(subject)
        if text is None:
            raise _fail(f"'matches' needs a string to match, got {type_name(subject)}", pos)
        self.check(len(text), False, pos)
        return self.compiled.fullmatch(text) is not None

    def split(self, text: str, pos: Optional[int]) -> list:
        """Java's String.split(regex): no leading empty string for a zero-width match at
        the start, trailing empty strings removed, ``""`` splits to ``[""]``."""
        if not text:
            return [""]
        if self.literal:
            if len(text) > MAX_STRING_LENGTH:
                raise _fail(f"cannot split a string longer than {MAX_STRING_LENGTH} "
                            "characters", pos)
            parts = text.split(self.literal, MAX_COLLECTION_SIZE)
        else:
            self.check(len(text), True, pos)
            parts = []
            last = 0
            for m in self.compiled.finditer(text):
                if m.end() == 0:
                    continue
                parts.append(text[last:m.start()])
                last = m.end()
                if len(parts) > MAX_COLLECTION_SIZE:
                    break
            parts.append(text[last:])
        if len(parts) > MAX_COLLECTION_SIZE:
            raise _fail(f"split() would produce more than {MAX_COLLECTION_SIZE} parts", pos)
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
        if parts == [""] and text:
            return []   # Java: every part was empty ("," split on ",")
        return parts


_REGEX_META = frozenset(".^$*+?{}[]\\|()")


@lru_cache(maxsize=512)
def compile_regex(pattern: str) -> SafeRegex:
    """Check and compile a regular expression (Python ``re`` syntax). Raises
    ``InvalidArgument`` when it is too long, invalid, or could backtrack catastrophically."""
    if len(pattern) > MAX_REGEX_LENGTH:
        raise InvalidArgument(f"regular expression longer than {MAX_REGEX_LENGTH} characters")
    try:
        parsed = _sre_parse.parse(pattern, 0)
        compiled = re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise InvalidArgument(f"invalid regular expression: {exc}") from None
    flags = compiled.flags | _local_flags(parsed)
    analysis = _RegexAnalysis(bool(flags & re.IGNORECASE),
                              unicode_classes=not (flags & (re.ASCII | re.LOCALE)))
    try:
        coefficient, degree = analysis.sequence(list(parsed), None, False)
    except RecursionError:
        raise InvalidArgument("regular expression is nested too deeply") from None
    if coefficient > REGEX_COST_BUDGET or degree > MAX_REGEX_DEGREE:
        raise InvalidArgument("regular expression is too complex")
    literal = pattern if pattern and not (_REGEX_META & set(pattern)) else None
    return SafeRegex(pattern, compiled, coefficient, degree, literal)


def regex_for(pattern: Any, pos: Optional[int]) -> SafeRegex:
    if isinstance(pattern, SafeRegex):
        return pattern
    text = _as_string(pattern)
    if text is None:
        raise _fail(f"a regular expression must be a string, got {type_name(pattern)}", pos)
    try:
        return compile_regex(text)
    except InvalidArgument as exc:
        raise _fail(str(exc), pos) from None


# ---------------------------------------------------------------------------------------
# #jsonPath(content, path)

class JsonPath:
    """A compiled JSON path. A *definite* path (only names and single indexes, like
    ``$.a.b[0]``) returns the value it points at, or null; any other path (wildcards,
    ``..``, filters, slices, unions) returns the list of all matches, possibly empty --
    the result type depends on the path, never on the data (Jayway JsonPath's rule)."""

    __slots__ = ("path", "steps", "expression")

    def __init__(self, path: str, steps: Optional[list], expression: Any) -> None:
        self.path = path
        self.steps = steps          # definite path: [(is_index, key), ...]
        self.expression = expression

    @property
    def definite(self) -> bool:
        return self.steps is not None

    def find(self, document: Any) -> Any:
        steps = self.steps
        if steps is not None:
            value = document
            for is_index, key in steps:
                if is_index:
                    t = type(value)
                    if (t is list or t is tuple) and -len(value) <= key < len(value):
                        value = value[key]
                    else:
                        return None
                else:
                    if type(value) is dict:
                        value = value.get(key, _MISSING)
                    elif isinstance(value, Mapping):
                        try:
                            value = value[key]
                        except KeyError:
                            return None
                    else:
                        return None
                    if value is _MISSING:
                        return None
            return value
        return [match.value for match in self.expression.find(document)]

    def __repr__(self) -> str:
        return f"JsonPath({self.path!r})"


def _jsonpath_nodes(root: Any):
    """Every node of a jsonpath-ng tree (walks the library's own objects, whose attribute
    names are the library's, not the expression's)."""
    from jsonpath_ng.jsonpath import JSONPath as _Node

    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        for value in getattr(node, "__dict__", {}).values():
            if isinstance(value, _Node):
                stack.append(value)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if isinstance(item, _Node):
                        stack.append(item)
                    elif isinstance(item, tuple):
                        stack.extend(x for x in item if isinstance(x, _Node))


def _definite_steps(node: Any) -> Optional[list]:
    from jsonpath_ng.jsonpath import Child, Fields, Index, Root, This

    steps: list = []

    def single(part: Any) -> Optional[tuple]:
        if type(part) is Fields and len(part.fields) == 1 \
                and not getattr(part, "_deprecated_wildcard_use", False):
            return (False, part.fields[0])
        if type(part) is Index and len(part.indices) == 1:
            return (True, part.indices[0])
        return None

    while True:
        if type(node) is Child:
            step = single(node.right)
            if step is None:
                return None
            steps.append(step)
            node = node.left
        elif type(node) is Root or type(node) is This:
            break
        else:
            step = single(node)
            if step is None or step[0]:
                return None
            steps.append(step)
            break
    steps.reverse()
    return steps


@lru_cache(maxsize=512)
def compile_json_path(path: str) -> JsonPath:
    """Parse a JSON path once (jsonpath-ng's extended syntax: filters ``[?(@.a > 1)]``,
    wildcards, ``..``, slices, unions). Regular expressions inside a path (``=~``,
    ``sub()``) are refused: they would bypass the regex safety checks. Raises
    ``InvalidArgument``."""
    if len(path) > MAX_JSON_PATH_LENGTH:
        raise InvalidArgument(f"JSON path longer than {MAX_JSON_PATH_LENGTH} characters")
    try:
        from jsonpath_ng.ext import parse as _parse
    except ImportError:  # pragma: no cover - jsonpath-ng is a dependency of evgate
        raise InvalidArgument("#jsonPath needs the jsonpath-ng package") from None
    try:
        expression = _parse(path)
    except Exception as exc:  # the library raises several unrelated types
        raise InvalidArgument(f"invalid JSON path {path!r}: {exc}") from None
    from jsonpath_ng.ext.filter import Expression
    from jsonpath_ng.ext.string import Sub

    for node in _jsonpath_nodes(expression):
        if isinstance(node, Sub) or (isinstance(node, Expression) and node.op == "=~"):
            raise InvalidArgument("regular expressions are not allowed in JSON paths")
    return JsonPath(path, _definite_steps(expression), expression)


def _json_path_argument(path: Any) -> JsonPath:
    """Compile-time preparation of the path argument when it is a literal."""
    if not isinstance(path, str):
        raise InvalidArgument(f"a JSON path must be a string, got {type_name(path)}")
    return compile_json_path(path)


def _json_document(scope: Scope, content: Any, pos: Optional[int]) -> Any:
    t = type(content)
    if t is dict or t is list or t is tuple:
        return content
    if content is None:
        raise _fail("#jsonPath: the content is null", pos)
    if t is str or t in _BYTES_TYPES:
        cache = scope.cache
        if cache is None:
            cache = scope.cache = {}
        key = ("json", id(content))
        entry = cache.get(key)
        if entry is not None and entry[0] is content:
            return entry[1]
        try:
            document = json.loads(bytes(content) if t is memoryview else content)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise _fail(f"#jsonPath: the content is not valid JSON ({exc})", pos) from None
        except RecursionError:
            raise _fail("#jsonPath: the JSON content is nested too deeply", pos) from None
        cache[key] = (content, document)
        return document
    kind = _kind(t)
    if kind == _K_MAPPING or kind == _K_SEQUENCE:
        return content
    raise _fail(f"#jsonPath: cannot read JSON from {type_name(content)}", pos)


def _json_path(scope: Scope, pos: Optional[int], content: Any, path: Any) -> Any:
    if not isinstance(path, JsonPath):
        try:
            path = _json_path_argument(path)
        except InvalidArgument as exc:
            raise _fail(f"#jsonPath: {exc}", pos) from None
    document = _json_document(scope, content, pos)
    return path.find(document)


# ---------------------------------------------------------------------------------------
# The function registry

@dataclass(frozen=True)
class Function:
    """A function callable as ``#name(args)``.

    ``impl(scope, pos, *args)`` computes the result. ``prepare`` maps an argument index to
    a converter applied once at compile time when that argument is a literal (a JSON path
    is parsed at deploy time, not per message); the converter raises ``InvalidArgument``.
    """

    name: str
    impl: Callable[..., Any]
    min_args: int
    max_args: int
    prepare: Mapping[int, Callable[[Any], Any]] = field(default_factory=dict)
    doc: str = ""


FUNCTIONS: dict[str, Function] = {
    "jsonPath": Function(
        "jsonPath", _json_path, 2, 2, {1: _json_path_argument},
        doc="#jsonPath(content, path): content is bytes/str (parsed as JSON) or an "
            "already decoded map/list; a definite path returns the value or null, any "
            "other path a list of matches."),
}
