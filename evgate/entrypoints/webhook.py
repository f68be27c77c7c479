"""webhook: the entrypoint of `subscription` listeners (push to a subscriber's callback).

It serves no HTTP request: the per-worker `evgate.webhooks.dispatcher.WebhookDispatcher`
runs one delivery loop per active subscription of the API. The entrypoint carries the
configuration those loops use (Gravitee 4.x shape):

    {"type": "webhook", "qos": "auto",
     "configuration": {"http": {"connectTimeout": 3000, "readTimeout": 10000,
                                "maxConcurrentConnections": 5}},
     "dlq": {"endpoint": "<endpoint or endpoint group name>"}}

Every QoS level is delivered at least once (see docs/webhooks.md).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from .base import Entrypoint


class WebhookEntrypoint(Entrypoint):
    type = "webhook"
    modes = frozenset({"subscribe"})
    methods: frozenset[str] = frozenset()
    supported_qos = frozenset({"none", "auto", "at-most-once", "at-least-once"})

    @classmethod
    def validate_configuration(cls, configuration: Mapping[str, Any],
                               definition: Any) -> Iterable[tuple[str, str]]:
        http = configuration.get("http")
        if http is None:
            pass
        elif not isinstance(http, Mapping):
            yield ".http", "must be an object"
        else:
            for name in ("connectTimeout", "readTimeout", "idleTimeout",
                         "maxConcurrentConnections"):
                value = http.get(name)
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                          or value <= 0):
                    yield f".http.{name}", "must be a positive integer"
        dlq = getattr(definition, "dlq", None)
        if dlq is not None and not (isinstance(dlq, Mapping)
                                    and isinstance(dlq.get("endpoint"), str)
                                    and dlq.get("endpoint")):
            yield ".dlq", "dlq must be {\"endpoint\": \"<endpoint name>\"} (reported here)"

    def matches(self, request: Any) -> bool:
        return False

    def allows_method(self, method: str) -> bool:
        return False
