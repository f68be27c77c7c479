"""assign-content: replace each message's content with a template (publish and subscribe).

Configuration: `body` (Gravitee's field name), the new content. Gravitee renders `body` with
FreeMarker; evgate renders it with its EL, and because bodies are usually JSON, only a `{`
followed by `#` (spaces allowed between) opens an expression: every other brace is text.

    {"feature": "{#jsonPath(#message.content, '$.feature')}", "raw": {#message.content}}

Each expression's value is inserted as text: strings as they are, bytes decoded as UTF-8,
null as nothing, booleans as true/false, lists and maps as JSON. A body that is exactly one
expression keeps bytes as bytes (`{#message.content}` copies the content unchanged) and
encodes a map or list as JSON. FreeMarker's `${...}` is refused at deploy with a hint.

A body that fails to evaluate drops the message (counted, logged once per burst): sending the
old content under a changed contract would be worse.
"""
from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Annotated, Any, Mapping, Optional

from pydantic import Field, WrapValidator

from ..definition.plugin_config import PluginConfiguration
from ..el import ExpressionError, Template, compile_template
from .base import MESSAGE_PHASES, Policy

if TYPE_CHECKING:
    from ..core.context import ExecutionContext
    from ..core.message import Message

_OPENER = re.compile(r"\{\s*#")


def split_body(body: str) -> list[str | tuple[int, str]]:
    """Text and `(offset, "{#...}")` expression pieces; raises ExpressionError (with the
    position in `body`) for an expression that is never closed."""
    pieces: list[str | tuple[int, str]] = []
    index = 0
    while True:
        match = _OPENER.search(body, index)
        if match is None:
            break
        start = match.start()
        end = _closing_brace(body, start)
        if end is None:
            raise ExpressionError("expression is not closed with '}'", start, body)
        if start > index:
            pieces.append(body[index:start])
        pieces.append((start, body[start:end + 1]))
        index = end + 1
    if index < len(body):
        pieces.append(body[index:])
    return pieces


def _closing_brace(text: str, start: int) -> int | None:
    """Index of the `}` closing the `{` at `start`; EL string literals ('..', ".." with the
    quote doubled inside) and nested inline lists/maps are skipped."""
    depth = 0
    index = start
    length = len(text)
    while index < length:
        char = text[index]
        if char in "'\"":
            index += 1
            while index < length:
                if text[index] == char:
                    if index + 1 < length and text[index + 1] == char:
                        index += 2
                        continue
                    break
                index += 1
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def compile_body(body: str) -> list[str | Template]:
    parts: list[str | Template] = []
    for piece in split_body(body):
        if isinstance(piece, str):
            parts.append(piece)
            continue
        offset, source = piece
        try:
            parts.append(compile_template(source))
        except ExpressionError as exc:
            position = None if exc.position is None else exc.position + offset
            raise ExpressionError(exc.message, position, body) from None
    return parts


def _body(value: Any, handler: Any) -> Any:
    """The body's checks: given, a string, no FreeMarker, then its expressions."""
    if value is None:
        raise ValueError("is required (the template of the new content)")
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if "${" in value:
        raise ValueError("FreeMarker templates (${...}) are not supported: use the "
                         "expression language, e.g. {#message.content} or "
                         "{#jsonPath(#message.content, '$.field')}")
    try:
        compile_body(value)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None
    return handler(value)


class AssignContentConfiguration(PluginConfiguration):
    body: Annotated[Optional[str], Field(validate_default=True), WrapValidator(_body)] = None


class AssignContentPolicy(Policy):
    type = "assign-content"
    phases = MESSAGE_PHASES
    configuration_model = AssignContentConfiguration

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.parts = compile_body(self.configuration.get("body") or "")

    def on_message(self, message: "Message", ctx: "ExecutionContext") -> "Message | None":
        parts = self.parts
        if len(parts) == 1 and isinstance(parts[0], str):
            message.content = parts[0].encode("utf-8")
            return message
        scope = ctx.message_scope(message)
        try:
            if len(parts) == 1:
                content = _whole(parts[0].evaluate(scope.variables, cache=scope.cache))
            else:
                content = "".join(
                    part if isinstance(part, str)
                    else _text(part.evaluate(scope.variables, cache=scope.cache))
                    for part in parts).encode("utf-8")
        except (ExpressionError, TypeError, ValueError) as exc:
            self.errors += 1
            self.burst_log(logging.WARNING, "API %s: assign-content failed on message %s: %s; "
                           "message dropped", getattr(self.api, "id", None), message.id, exc)
            return None
        message.content = content
        return message


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)


def _whole(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return _text(value).encode("utf-8")


def _plain(value: Any) -> Any:
    """Mappings and sequences (e.g. headers views) as plain JSON-able values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot render {type(value).__name__} as JSON")
