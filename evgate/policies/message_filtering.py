"""message-filtering: keep a message when its filter is true (publish and subscribe phases).

Configuration: `filter` (EL template, required), `filterMessageOnFilteringError` (default
true: a message whose filter fails to evaluate is dropped; false keeps it).

Double evaluation (Gravitee's): a filter may evaluate to a *string*, which is then evaluated
as the filter, once (never a third time). That lets a subscription carry its own filter,
e.g. filter `{#subscription.metadata.filter}` with metadata
`filter = {#jsonPath(#message.content, '$.feature') == 'demo'}`. A filter that does not read
`#message` is evaluated once per request/subscription context; a string it yields is compiled
through a bounded cache, so per message only the inner filter runs. The final value must be a
boolean (or the text "true"/"false").

Errors are counted on the instance (`errors`) and logged once per burst; the other messages
flow. A dropped message is acknowledged by the caller, so consumer lag does not grow.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..definition.plugin_config import OptionalFlag, PluginConfiguration
from ..el import ExpressionError, Template, compile_template
from ..observability import metrics
from .base import MESSAGE_PHASES, Policy, RequiredTemplate, as_boolean

if TYPE_CHECKING:
    from ..core.context import ExecutionContext
    from ..core.message import Message

logger = logging.getLogger(__name__)

_INNER_CACHE_SIZE = 256


class MessageFilteringConfiguration(PluginConfiguration):
    filter: RequiredTemplate = None
    filterMessageOnFilteringError: OptionalFlag = None


class MessageFilteringPolicy(Policy):
    type = "message-filtering"
    phases = MESSAGE_PHASES
    configuration_model = MessageFilteringConfiguration

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.filter = compile_template(self.configuration["filter"])
        self.drop_on_error = self.configuration.get("filterMessageOnFilteringError") is not False
        #: a filter that never reads #message has one value per context: computed once there
        self.per_context = "message" not in self.filter.variables
        self._inner: OrderedDict[str, Template | ExpressionError] = OrderedDict()
        self.dropped = 0

    def on_message(self, message: "Message", ctx: "ExecutionContext") -> "Message | None":
        scope = ctx.message_scope(message)
        try:
            if self.per_context:
                value = self._context_value(ctx)
                if isinstance(value, Template):
                    value = value.evaluate(scope.variables, cache=scope.cache)
            else:
                value = self.filter.evaluate(scope.variables, cache=scope.cache)
                if isinstance(value, str) and not _is_boolean_text(value):
                    value = self._compiled(value).evaluate(scope.variables, cache=scope.cache)
            keep = as_boolean(value, "the filter")
        except ExpressionError as exc:
            self.errors += 1
            self.burst_log(logging.WARNING, "API %s: message-filtering %r failed on message "
                           "%s: %s; message %s (%d errors so far)", getattr(self.api, "id", None),
                           self.filter.source, message.id, exc,
                           "dropped" if self.drop_on_error else "kept", self.errors)
            keep = not self.drop_on_error
        if keep:
            return message
        self.dropped += 1
        metrics.message_filtered(getattr(self.api, "id", None),
                                 getattr(ctx, "entrypoint_type", None))
        return None

    def _context_value(self, ctx: "ExecutionContext") -> Any:
        """The filter's value without a message, once per context: a boolean, or the inner
        filter (a Template) when it yielded a string. Errors are re-raised per message."""
        key = (self, "filter")
        value = ctx.scratch.get(key, _MISSING)
        if value is _MISSING:
            try:
                value = self.filter.evaluate(ctx.context_variables())
                if isinstance(value, str) and not _is_boolean_text(value):
                    value = self._compiled(value)
            except ExpressionError as exc:
                value = exc
            ctx.scratch[key] = value
        if isinstance(value, ExpressionError):
            raise value
        return value

    def _compiled(self, source: str) -> Template:
        """Compile a filter that an evaluation produced (bounded LRU; errors cached too)."""
        cached = self._inner.get(source)
        if cached is None:
            try:
                cached = compile_template(source)
            except ExpressionError as exc:
                cached = ExpressionError(f"the filter {source!r} given by {self.filter.source!r} "
                                         f"does not compile: {exc}")
            self._inner[source] = cached
            if len(self._inner) > _INNER_CACHE_SIZE:
                self._inner.popitem(last=False)
        else:
            self._inner.move_to_end(source)
        if isinstance(cached, ExpressionError):
            raise cached
        return cached


_MISSING = object()


def _is_boolean_text(value: str) -> bool:
    return value.strip().lower() in ("true", "false")
