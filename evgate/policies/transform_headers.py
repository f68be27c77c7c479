"""transform-headers: remove, whitelist and add headers of messages, requests or responses.

Configuration (Gravitee's): `removeHeaders: [name]`, `whitelistHeaders: [name]`,
`addHeaders: [{name, value}]` (values are EL templates), `scope` (accepted for 3.x
compatibility and ignored: in a V4 flow the step's phase decides what is transformed).

Order: remove, then whitelist (when not empty, only the listed headers are kept), then add
(each added header replaces any header of that name). Names compare case-insensitively. A
value that evaluates to null is not added; one that fails to evaluate is skipped, counted and
logged once per burst (Gravitee ignores it too).

- publish/subscribe: the message's headers (Kafka record headers on publish).
- request: the HTTP request's headers as the entrypoint and later expressions see them (e.g.
  with http-post `requestHeadersToMessage`, or `X-Kafka-Key`).
- response: the headers of the response sent to the client.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any, Optional

from pydantic import Field, SkipValidation

from ..definition.plugin_config import PluginConfiguration, checked
from ..el import ExpressionError, compile_template
from .base import NameValueList, Policy, as_text

if TYPE_CHECKING:
    from ..core.context import ExecutionContext
    from ..core.message import Message


#: header names (Gravitee's `removeHeaders` / `whitelistHeaders`)
HeaderNames = Annotated[Optional[list[Annotated[str, Field(strict=True)]]],
                        checked("must be a list of header names")]


class TransformHeadersConfiguration(PluginConfiguration):
    removeHeaders: HeaderNames = None
    whitelistHeaders: HeaderNames = None
    addHeaders: NameValueList = None
    scope: Annotated[Optional[str], SkipValidation] = None  # accepted, ignored


class TransformHeadersPolicy(Policy):
    type = "transform-headers"
    configuration_model = TransformHeadersConfiguration

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        conf = self.configuration
        self.remove = {n.strip().lower() for n in conf.get("removeHeaders") or () if n.strip()}
        self.whitelist = {n.strip().lower() for n in conf.get("whitelistHeaders") or ()
                          if n.strip()}
        self.add = [(item["name"].strip(), compile_template(item.get("value") or ""))
                    for item in conf.get("addHeaders") or ()]

    def _values(self, variables: dict[str, Any], cache: dict | None) -> list[tuple[str, str]]:
        values = []
        for name, template in self.add:
            try:
                text = as_text(template.evaluate(variables, cache=cache))
            except ExpressionError as exc:
                self.errors += 1
                self.burst_log(logging.WARNING, "API %s: transform-headers: value of %r "
                               "failed: %s; header not set", getattr(self.api, "id", None),
                               name, exc)
                continue
            if text is not None:
                values.append((name, text))
        return values

    def _keep(self, name: str) -> bool:
        lowered = name.lower()
        if lowered in self.remove:
            return False
        return not self.whitelist or lowered in self.whitelist

    # -- messages -----------------------------------------------------------------------------
    def on_message(self, message: "Message", ctx: "ExecutionContext") -> "Message | None":
        headers = message.headers
        if self.remove or self.whitelist:
            for name in [n for n in headers if not self._keep(n)]:
                del headers[name]
        if self.add:
            scope = ctx.message_scope(message)
            for name, text in self._values(scope.variables, scope.cache):
                lowered = name.lower()
                for existing in [n for n in headers if n.lower() == lowered]:
                    del headers[existing]
                headers[name] = [text]
        return message

    # -- request ------------------------------------------------------------------------------
    def on_request(self, ctx: "ExecutionContext") -> None:
        request = ctx.request
        if request is None:
            return
        environ = request.environ
        for name in [n for n, _ in request.headers.items() if not self._keep(n)]:
            environ.pop(_environ_key(name), None)
        for name, text in self._values(ctx.context_variables(), None):
            environ[_environ_key(name)] = text
        # werkzeug's EnvironHeaders reads the environ live; the EL view is rebuilt.
        ctx.refresh_request_headers()

    # -- response -----------------------------------------------------------------------------
    def on_response(self, ctx: "ExecutionContext", response: Any) -> Any:
        headers = response.headers
        for name in {n for n, _ in headers.items() if not self._keep(n)}:
            del headers[name]
        for name, text in self._values(ctx.context_variables(), None):
            headers[name] = text
        return response


def _environ_key(name: str) -> str:
    key = name.upper().replace("-", "_")
    if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        return key
    return "HTTP_" + key
