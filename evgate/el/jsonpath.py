"""``#jsonPath(content, path)``: JSON paths compiled once (jsonpath-ng), no filters or
regular expressions inside them."""
from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Optional

from .values import (_BYTES_TYPES, _K_MAPPING, _K_SEQUENCE, _MISSING, InvalidArgument, Scope,
                     _fail, _kind, type_name)

MAX_JSON_PATH_LENGTH = 1_000


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
