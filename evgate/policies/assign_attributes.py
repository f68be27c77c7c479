"""assign-attributes: set attributes from EL templates.

Configuration (Gravitee's): `attributes: [{name, value}]`, `scope` (accepted, ignored: the
step's phase decides). In publish/subscribe steps the attributes are set on each message
(`#message.attributes`); in request/response steps on the context (`#context.attributes`).
Values keep the type the expression gives (a number stays a number), except the Kafka record
key, which is rendered as text.

This is how a Kafka record key or topic is chosen per message, e.g. on publish
`{"name": "gravitee.attribute.kafka.recordKey", "value": "{#request.headers['X-Order'][0]}"}`
or `gravitee.attribute.kafka.topics` (comma separated). An attribute whose value fails to
evaluate is not set; the failure is counted and logged once per burst.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any, Optional

from pydantic import SkipValidation

from ..definition.plugin_config import PluginConfiguration
from ..core.message import RECORD_KEY_ATTRIBUTE
from ..el import ExpressionError, compile_template
from .base import NameValueList, Policy, as_text

if TYPE_CHECKING:
    from ..core.context import ExecutionContext
    from ..core.message import Message



class AssignAttributesConfiguration(PluginConfiguration):
    attributes: NameValueList = None
    scope: Annotated[Optional[str], SkipValidation] = None  # accepted, ignored


class AssignAttributesPolicy(Policy):
    type = "assign-attributes"
    configuration_model = AssignAttributesConfiguration

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.attributes = [(item["name"].strip(), compile_template(item.get("value") or ""))
                           for item in self.configuration.get("attributes") or ()]

    def _assign(self, target: dict[str, Any], variables: dict[str, Any],
                cache: dict | None) -> None:
        for name, template in self.attributes:
            try:
                value = template.evaluate(variables, cache=cache)
            except ExpressionError as exc:
                self.errors += 1
                self.burst_log(logging.WARNING, "API %s: assign-attributes: value of %r "
                               "failed: %s; attribute not set", getattr(self.api, "id", None),
                               name, exc)
                continue
            if name == RECORD_KEY_ATTRIBUTE and value is not None:
                value = as_text(value)   # the producer takes text or bytes, not numbers
            target[name] = value

    def on_message(self, message: "Message", ctx: "ExecutionContext") -> "Message | None":
        scope = ctx.message_scope(message)
        self._assign(message.attributes, scope.variables, scope.cache)
        return message

    def on_request(self, ctx: "ExecutionContext") -> None:
        self._assign(ctx.attributes, ctx.context_variables(), None)

    def on_response(self, ctx: "ExecutionContext", response: Any) -> Any:
        self._assign(ctx.attributes, ctx.context_variables(), None)
        return response
