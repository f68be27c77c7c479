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
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Iterable, Iterator, Mapping, Optional

from pydantic import Field, WrapValidator

from ..definition import plugin_config
from ..definition.plugin_config import PluginConfiguration, must_be
from ..definition.flows import ALL_PHASES, MESSAGE_PHASES, REQUEST_PHASES  # noqa: F401 - phases
from ..el import ExpressionError, Template, compile_template

if TYPE_CHECKING:
    from ..core.context import ExecutionContext
    from ..core.message import Message


class Policy:
    type: ClassVar[str] = ""
    #: Phases the policy may be placed in (checked by the definition validator).
    phases: ClassVar[frozenset[str]] = ALL_PHASES
    #: the pydantic model of the step configuration (validation, secrets, JSON schema)
    configuration_model: ClassVar[type | None] = None
    #: where the step is in the deployed definition (`$.flows[0].request[1]`), the same in
    #: every worker; set by the chain after construction (state shared across workers is
    #: keyed by it)
    place: str = ""

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
        """(sub-path, message) pairs for each problem; the sub-path starts with '.' or '['.
        The default checks `configuration_model`; override to add checks that need the
        definition (call super)."""
        return plugin_config.problems(cls.configuration_model, configuration)

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


def el_template(*, required: bool = False) -> Any:
    """Annotation of an EL template field (`template_problem`'s checks: type, then syntax)."""
    def wrap(value: Any, handler: Any) -> Any:
        for _, message in template_problem(value, "", required=required):
            raise ValueError(message)
        return handler(value)
    return WrapValidator(wrap)


#: an optional EL template
TemplateField = Annotated[Optional[str], el_template()]
#: a required EL template (use with a None default: the check runs on the default too)
RequiredTemplate = Annotated[Optional[str], Field(validate_default=True),
                             el_template(required=True)]


class NameValue(PluginConfiguration):
    """`{name, value}`, the value an EL template."""
    name: Annotated[Optional[str], Field(validate_default=True),
                    plugin_config.non_empty("must be a non-empty string")] = None
    value: TemplateField = None


#: a `[{name, value}]` list whose values are EL templates
NameValueList = Annotated[
    Optional[list[Annotated[NameValue, must_be(dict, "must be an object {name, value}")]]],
    must_be(list, "must be a list of {name, value}")]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "a string", bytes: "bytes", int: "an integer", float: "a number",
            list: "a list", dict: "a map"}.get(type(value), type(value).__name__)
