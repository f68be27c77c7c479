"""What an expression can do at run time: the function registry, and the one import for it all.

The ideas live in their own modules: ``values.py`` (types, text, equality, arithmetic,
property and index access), ``methods.py`` (per-type method tables), ``regex.py``
(``matches`` / ``split``), ``jsonpath.py`` (``#jsonPath``); this module re-exports them.
Everything is a whitelist. Property access reads Mapping keys or the mapping that an
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
``REGEX_COST_BUDGET``   RE2 program size times subject bytes that one search (or all the
                        searches of a ``split``) may cost; a larger subject is refused
                        before matching.
``MAX_JSON_PATH_LENGTH`` longest JSON path given to ``#jsonPath``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from .jsonpath import (MAX_JSON_PATH_LENGTH, JsonPath, _json_path, _json_path_argument,
                       compile_json_path)
from .methods import (ANY_METHODS, LIST_METHODS, MAP_METHODS, METHOD_ARITIES, STRING_METHODS,
                      call_method)
from .regex import MAX_REGEX_LENGTH, REGEX_COST_BUDGET, SafeRegex, compile_regex, regex_for
from .values import (ARITHMETIC, COMPARISONS, MAX_COLLECTION_SIZE, MAX_STRING_LENGTH,
                     InvalidArgument, Scope, el_equals, get_index, get_property, negate,
                     ordering_operands, template_text, to_text, type_name, unary_plus)

__all__ = [
    "MAX_STRING_LENGTH", "MAX_COLLECTION_SIZE", "MAX_REGEX_LENGTH", "REGEX_COST_BUDGET",
    "MAX_JSON_PATH_LENGTH", "Scope", "Function", "FUNCTIONS", "STRING_METHODS",
    "LIST_METHODS", "MAP_METHODS", "ANY_METHODS", "METHOD_ARITIES", "InvalidArgument",
    "SafeRegex", "compile_regex", "JsonPath", "compile_json_path", "type_name", "to_text",
    "template_text", "el_equals", "get_property", "get_index", "call_method",
    "ARITHMETIC", "COMPARISONS", "negate", "unary_plus", "ordering_operands", "regex_for",
]


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
