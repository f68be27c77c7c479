"""Reading untrusted JSON bodies without giving a client a 500: size, depth, text, constants.

Shared by the management API (evgate/management/body.py) and batch ingestion
(evgate/entrypoints/http_post.py). Why each check:

- size: a body is read at most `limit + 1` bytes, whatever Content-Length says (chunked bodies
  have none), so memory per request is bounded; past the limit -> 413.
- depth: CPython's json (and copy.deepcopy, pydantic, the masking walk after it) recurse per
  nesting level; 10,000 levels raise RecursionError. The depth is measured BEFORE parsing,
  without recursion and without a Python loop per byte (bytes methods cut out escapes,
  strings and all but brackets) -> 400.
- text: bodies must be UTF-8; `json.loads(bytes)` would let UTF-8-encoded surrogates through
  ('surrogatepass'), and a `\\ud800` escape yields a lone surrogate that no database or
  encoder downstream accepts -> 400 naming the JSON path.
- numbers: NaN / Infinity are not JSON (RFC 8259), and 1e999 parses as infinity; stored, they
  would be echoed back as invalid JSON -> 400.
"""
from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import IO, Any

from .errors import BadRequestError, PayloadTooLargeError

_OPEN, _CLOSE = b"[{", b"]}"
#: brackets -> 0x01 / 0xff (+1 / -1 as signed chars), quotes kept, everything else deleted
_BRACKET_TABLE = bytes(1 if b in _OPEN else 255 if b in _CLOSE else b for b in range(256))
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in _OPEN + _CLOSE + b'"')
_PAIR = b"\x01\xff"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: where the location of a too-deep point is searched (a Python loop; bounded on purpose)
_LOCATE_LIMIT = 1 << 20


def read_body(stream: IO[bytes], content_length: int | None, limit: int, *,
              what: str = "request body") -> bytes:
    """At most `limit` bytes of `stream`; 413 when Content-Length or the bytes read exceed it
    (a chunked body has no Content-Length: the read itself is bounded)."""
    if content_length is not None and content_length > limit:
        raise PayloadTooLargeError(f"{what} exceeds {limit} bytes (Content-Length "
                                   f"{content_length})", key="body.tooLarge")
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLargeError(f"{what} exceeds {limit} bytes", key="body.tooLarge")
    return body


def _brackets(data: bytes) -> bytes:
    """The array/object brackets of `data` outside strings, as +1 / -1 signed bytes."""
    # Only the escapes \\ and \" can hide a quote. Without them quotes alternate open/close;
    # deleting every byte but brackets and quotes, then every "" pair (an empty string, or
    # the close and the open of two strings), keeps each bracket's inside/outside status.
    if b"\\" in data:   # a memchr; the two scans for escapes only when there can be one
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = data.translate(_BRACKET_TABLE, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in kept:  # strings holding brackets: keep the pieces between them
        kept = b"".join(kept.split(b'"')[::2])
    return kept


def _deeper_than(brackets: bytes, limit: int) -> bool:
    """True when the running bracket count exceeds `limit` somewhere: exact for balanced
    brackets, and never False for a body a parser would recurse into deeper than `limit`."""
    if brackets.count(1) <= limit:  # too few openings to nest that deep: the common case
        return False
    # Each pass deletes the innermost pairs ([] and {} alike), so one nesting level; typical
    # JSON is gone in a few passes. What is left is summed (the depth left = depth - passes).
    passes = 0
    while passes < min(limit, 16):
        reduced = brackets.replace(_PAIR, b"")
        if len(reduced) == len(brackets):  # unbalanced rest (]]][[[): summed below
            break
        brackets, passes = reduced, passes + 1
    if not brackets:
        return False
    return max(accumulate(array("b", brackets))) > limit - passes


def max_depth(data: bytes) -> int:
    """The deepest nesting of arrays/objects in `data` (valid JSON assumed; for invalid JSON
    a number json.loads will reject anyway). Linear, no recursion, no Python loop per byte."""
    return max(0, max(accumulate(array("b", _brackets(data))), default=0))


def depth_offset(data: bytes, limit: int) -> int | None:
    """Byte offset of the first bracket nested deeper than `limit` (None when not found in
    the first 1 MiB: only called to say where a refused body went wrong)."""
    depth, in_string, escaped = 0, False, False
    for offset, byte in enumerate(data[:_LOCATE_LIMIT]):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return offset
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return None


def check_depth(data: bytes, limit: int, *, what: str = "JSON body",
                key: str = "body.tooDeep", outer_levels: int = 0) -> None:
    """400 when `data` nests arrays/objects deeper than `limit` levels (plus `outer_levels`
    that wrap what is limited, such as a batch's array)."""
    if not _deeper_than(_brackets(data), limit + outer_levels):
        return
    offset = depth_offset(data, limit + outer_levels)
    where = f" at byte {offset}" if offset is not None else ""
    raise BadRequestError(f"{what} nests arrays/objects deeper than {limit} levels{where}",
                          key=key)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e999 would come back out as Infinity
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def lone_surrogate_path(value: Any) -> str | None:
    """JSON path of the first string (or key) holding a lone UTF-16 surrogate, else None.
    Iterative: callers bound the depth, but nothing here relies on that."""
    stack: list[tuple[str, Any]] = [("$", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                if _SURROGATE.search(key):
                    return f"{path} (a key)"
                stack.append((f"{path}.{key}", child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return None


def loads(data: bytes, *, max_depth_limit: int) -> Any:
    """Strict JSON: UTF-8, depth-limited, no NaN/Infinity, no lone surrogates (each -> 400
    saying what and where)."""
    check_depth(data, max_depth_limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"body is not valid UTF-8 at byte {exc.start}",
                              key="body.malformed") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except ValueError as exc:
        raise BadRequestError(f"malformed JSON body: {exc}", key="body.malformed") from None
    if _SURROGATE_ESCAPE.search(text):  # only an escape can yield a surrogate: walk then
        path = lone_surrogate_path(value)
        if path is not None:
            raise BadRequestError(f"{path}: a lone UTF-16 surrogate is not valid text",
                                  key="body.malformed")
    return value
