"""The policy interface and the helpers every built-in policy shares.

A policy is built once per deployed API from its step configuration (expressions compiled
there: a bad expression fails the deploy, not a request). At run time the chain calls
`on_request` / `on_response` for request phases and `on_message` for each message of the
publish and subscribe phases.

`validate_configuration(configuration, definition)` runs at import/deploy (the definition
validator calls it) and yields `(sub-path, message)` pairs, e.g.
`(".filter", "unexpected token ')' at position 12")`; the constructor may then assume a
configuration that passed it.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Iterator, Mapping

from ..definition.flows import ALL_PHASES, MESSAGE_PHASES, REQUEST_PHASES  # noqa: F401 - phases
from ..el import ExpressionError, Template, compile_template

if TYPE_CHECKING:
    from ..core.context import ExecutionContext
    from ..core.message import Message


class Policy:
    type: ClassVar[str] = ""
    #: Phases the policy may be placed in (checked by the definition validator).
    phases: ClassVar[frozenset[str]] = ALL_PHASES

    def __init__(self, configuration: Mapping[str, Any], step: Any = None, api: Any = None):
        self.configuration = dict(configuration)
        self.step = step
        self.api = api
        #: messages this instance failed on (evaluation errors, policy failures)
        self.errors = 0
        self.burst_log = BurstLog(logging.getLogger(type(self).__module__))

    @classmethod
    def validate_configuration(cls, configuration: Mapping[str, Any],
                               definition: Any) -> Iterable[tuple[str, str]]:
        return ()

    def on_request(self, ctx: "ExecutionContext") -> None:
        """Request phase; may raise a GatewayError to answer the client."""

    def on_response(self, ctx: "ExecutionContext", response: Any) -> Any:
        return response

    def on_message(self, message: "Message", ctx: "ExecutionContext") -> "Message | None":
        """Publish/subscribe phase: return the message (maybe changed in place) or None to
        drop it. Return the same object when keeping it: callers match results by identity."""
        return message

    def __repr__(self) -> str:
        return f"<{type(self).__name__} api={getattr(self.api, 'id', None)}>"


class BurstLog:
    """Logs the first event of a burst, then at most once per `interval` seconds with the
    number of events left unlogged in between: a filter failing on every record of a topic
    must not write one line per record."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0):
        self.logger = logger
        self.interval = interval
        self._last = -interval
        self._suppressed = 0

    def __call__(self, level: int, msg: str, *args: Any, exc_info: Any = None) -> bool:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return False
        suppressed, self._suppressed, self._last = self._suppressed, 0, now
        if suppressed:
            msg += " (and %d more like it in the last %.0fs)"
            args = args + (suppressed, self.interval)
        self.logger.log(level, msg, *args, exc_info=exc_info)
        return True


# -- configuration helpers ----------------------------------------------------------------------

def template_problem(value: Any, sub_path: str, *, required: bool = False
                     ) -> Iterator[tuple[str, str]]:
    """Problems of one EL template field: type, then syntax (with the position)."""
    if value is None:
        if required:
            yield sub_path, "is required"
        return
    if not isinstance(value, str):
        yield sub_path, "must be a string (an EL template)"
        return
    if required and not value.strip():
        yield sub_path, "must not be empty"
        return
    try:
        compile_template(value)
    except ExpressionError as exc:
        yield sub_path, str(exc)


def compile_optional(value: Any) -> Template | None:
    return compile_template(value) if isinstance(value, str) and value != "" else None


def as_boolean(value: Any, what: str = "the expression") -> bool:
    """Spring's conversion to boolean: booleans, and the strings "true"/"false"."""
    if value is True or value is False:
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ExpressionError(f"{what} must give a boolean, got {_type_name(value)}")


def as_text(value: Any) -> str | None:
    """Render an EL value as a header/attribute text: None stays None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def name_value_list(configuration: Mapping[str, Any], field: str
                    ) -> Iterator[tuple[str, str]]:
    """Problems of a `[{name, value}]` list whose values are EL templates."""
    items = configuration.get(field)
    if items is None:
        return
    if not isinstance(items, list):
        yield f".{field}", "must be a list of {name, value}"
        return
    for index, item in enumerate(items):
        where = f".{field}[{index}]"
        if not isinstance(item, dict):
            yield where, "must be an object {name, value}"
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            yield f"{where}.name", "must be a non-empty string"
        yield from template_problem(item.get("value"), f"{where}.value")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "a string", bytes: "bytes", int: "an integer", float: "a number",
            list: "a list", dict: "a map"}.get(type(value), type(value).__name__)
