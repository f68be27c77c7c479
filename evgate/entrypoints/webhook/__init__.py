"""webhook: the entrypoint of `subscription` listeners (push to a subscriber's callback).

It serves no HTTP request: the per-worker `dispatcher.WebhookDispatcher` runs one delivery loop
per active subscription of the API over the endpoint's committed group stream (the plugin SPI,
evgate/core/spi.py `open_group_stream`; the DLQ through the DLQ endpoint's `publish`). Like any
plugin it imports neither the engine nor the Kafka bridge. Its parts:

    dispatcher.py  per-worker manager: reacts to runtime snapshots, starts/stops loops
    delivery.py    one delivery loop per active subscription (at-least-once, ordered per
                   partition, retries, DLQ, FAILURE)
    http.py        the HTTP client: pinned-address connections (SSRF), auth, timeouts
    target.py      the subscription's callback, headers, auth and secret, checked
    signing.py     Standard Webhooks signatures
    ssrf.py        the allow/deny policy for callback targets
    retry.py       exponential backoff with full jitter

The entrypoint carries the configuration those loops use (Gravitee 4.x shape):

    {"type": "webhook", "qos": "auto",
     "configuration": {"http": {"connectTimeout": 3000, "readTimeout": 10000,
                                "maxConcurrentConnections": 5}},
     "dlq": {"endpoint": "<endpoint or endpoint group name>"}}

Every QoS level is delivered at least once (see docs/webhooks.md).
"""
from __future__ import annotations

from typing import Annotated, Any, Iterable, Literal, Mapping, Optional

from pydantic import Field

from ...definition.plugin_config import PluginConfiguration, Secret, checked, must_be
from ..base import Entrypoint


PositiveMs = Annotated[Optional[int], Field(strict=True, gt=0),
                      checked("must be a positive integer")]


class WebhookHttp(PluginConfiguration):
    connectTimeout: PositiveMs = None
    readTimeout: PositiveMs = None
    idleTimeout: PositiveMs = None
    maxConcurrentConnections: PositiveMs = None


class WebhookConfiguration(PluginConfiguration):
    http: Annotated[Optional[WebhookHttp], must_be(dict, "must be an object")] = None


# -- the subscription's configuration (secrets declared here; shape checked by target.py) -----
#: the callback's credentials go to the callback: **** keeps them while it stays the same
TO_CALLBACK = Secret(sent_to=(("callbackUrl",),))


class WebhookBasicAuth(PluginConfiguration):
    username: Optional[str] = None
    password: Annotated[Optional[str], TO_CALLBACK] = None


class WebhookTokenAuth(PluginConfiguration):
    value: Annotated[Optional[str], TO_CALLBACK] = None


class WebhookOAuth2(PluginConfiguration):
    endpoint: Optional[str] = None
    clientId: Optional[str] = None
    clientSecret: Annotated[Optional[str], Secret(sent_to=(("auth", "oauth2", "endpoint"),))
                            ] = None
    scopes: Optional[list[str]] = None


class WebhookAuth(PluginConfiguration):
    type: Optional[Literal["none", "basic", "token", "oauth2"]] = None
    basic: Optional[WebhookBasicAuth] = None
    token: Optional[WebhookTokenAuth] = None
    oauth2: Optional[WebhookOAuth2] = None


class WebhookHeader(PluginConfiguration):
    name: str
    value: str


class WebhookSubscriptionConfiguration(PluginConfiguration):
    entrypointId: Optional[Literal["webhook"]] = None
    callbackUrl: str
    headers: Optional[list[WebhookHeader]] = None
    auth: Optional[WebhookAuth] = None
    #: Standard Webhooks signing key (`whsec_` + base64); never sent
    secret: Annotated[Optional[str], Secret()] = None


class WebhookEntrypoint(Entrypoint):
    type = "webhook"
    modes = frozenset({"subscribe"})
    methods: frozenset[str] = frozenset()
    supported_qos = frozenset({"none", "auto", "at-most-once", "at-least-once"})
    configuration_model = WebhookConfiguration
    #: what a subscriber gives in its subscription (checked by target.py)
    subscription_configuration_model = WebhookSubscriptionConfiguration

    @classmethod
    def validate_configuration(cls, configuration: Mapping[str, Any],
                               definition: Any) -> Iterable[tuple[str, str]]:
        yield from super().validate_configuration(configuration, definition)
        dlq = getattr(definition, "dlq", None)
        if dlq is not None and not (isinstance(dlq, Mapping)
                                    and isinstance(dlq.get("endpoint"), str)
                                    and dlq.get("endpoint")):
            yield ".dlq", "dlq must be {\"endpoint\": \"<endpoint name>\"} (reported here)"

    def matches(self, request: Any) -> bool:
        return False

    def allows_method(self, method: str) -> bool:
        return False
