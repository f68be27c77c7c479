"""Values: type names, text rendering, equality and ordering, arithmetic (64-bit integers, no
silent overflow), property and index access through the object protocol (``el_properties()``).

Everything here is a whitelist: nothing calls ``getattr`` with a name taken from an
expression. ``MAX_STRING_LENGTH`` and ``MAX_COLLECTION_SIZE`` bound what an operation may
produce (docs/expression-language.md, "Limits").
"""
from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

from .errors import ExpressionEvaluationError
from .lexer import MAX_INT, MIN_INT

MAX_STRING_LENGTH = 1024 * 1024
MAX_COLLECTION_SIZE = 100_000


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
