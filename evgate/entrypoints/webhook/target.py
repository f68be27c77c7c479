"""A webhook subscription's target, parsed once: URL, headers, auth, signing key, timeouts.

The subscription `configuration` (Gravitee's shape plus evgate's `secret`):

    {"entrypointId": "webhook",
     "callbackUrl": "https://receiver.example/hook",
     "headers": [{"name": "X-Tenant", "value": "acme"}],
     "auth": {"type": "basic", "basic": {"username": "u", "password": "p"}}
           | {"type": "token", "token": {"value": "..."}}
           | {"type": "oauth2", "oauth2": {"endpoint", "clientId", "clientSecret", "scopes"}},
     "secret": "whsec_..."}          # evgate: Standard Webhooks signatures (signing.py)

Connect/read timeouts and concurrency come from the API's webhook entrypoint configuration
(`http: {connectTimeout, readTimeout, maxConcurrentConnections}`), else the gateway settings;
the overall deadline of an attempt is `webhook_delivery_timeout_ms`, at least connect + read.
`check_subscription_callback` is what the subscription service calls on every create and
update (400 naming the field when the callback is refused).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ...errors import BadRequestError
from .http import AuthError, WebhookAuth
from .signing import InvalidSecret, decode_secret
from .ssrf import CallbackUrlRefused, SsrfPolicy, check_callback_url, split_callback_url

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

#: Headers a record or a subscription may not set: framing and hop-by-hop ones belong to the
#: HTTP client, and webhook-* belong to the signature.
RESERVED_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
    "trailer", "upgrade", "proxy-authorization", "proxy-connection", "expect",
    "webhook-id", "webhook-timestamp", "webhook-signature"})


class InvalidSubscriptionConfiguration(BadRequestError):
    key = "subscription.configuration.invalid"


def header_allowed(name: Any) -> bool:
    return isinstance(name, str) and bool(_TOKEN.match(name)) and \
        name.lower() not in RESERVED_HEADERS


def header_value(value: Any) -> str | bytes | None:
    """A value `requests` accepts (no CR/LF/NUL, no leading space; non-latin-1 as UTF-8
    bytes), or None when it cannot be sent."""
    if value is None:
        return None
    text = str(value).strip()
    if any(c in text for c in "\r\n\x00"):
        return None
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _ms(value: Any, default_ms: int) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value) / 1000.0
    return default_ms / 1000.0


@dataclass
class WebhookTarget:
    url: str
    headers: dict[str, str | bytes] = field(default_factory=dict)
    auth: WebhookAuth = field(default_factory=lambda: WebhookAuth(None))
    signing_key: bytes | None = None
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    #: Overall bound of one attempt; per-read timeouts alone let a dripping receiver stall.
    deadline_s: float = 30.0
    max_connections: int = 5

    def __repr__(self) -> str:  # no secrets, no header values
        return (f"<WebhookTarget {self.url} auth={self.auth.type} "
                f"signed={self.signing_key is not None}>")

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout_s, self.read_timeout_s)

    @classmethod
    def build(cls, configuration: Mapping[str, Any], entrypoint_configuration: Mapping[str, Any],
              config: Any) -> "WebhookTarget":
        """Parse; raise InvalidSubscriptionConfiguration on a configuration that cannot work."""
        problems = configuration_problems(configuration)
        if problems:
            raise InvalidSubscriptionConfiguration("; ".join(problems))
        http = entrypoint_configuration.get("http") or {}
        max_connections = http.get("maxConcurrentConnections")
        headers: dict[str, str | bytes] = {}
        for item in configuration.get("headers") or []:
            value = header_value(item.get("value"))
            if value is not None:
                headers[item["name"]] = value
        secret = configuration.get("secret")
        connect_timeout_s = _ms(http.get("connectTimeout"), config.webhook_connect_timeout_ms)
        read_timeout_s = _ms(http.get("readTimeout"), config.webhook_read_timeout_ms)
        return cls(
            url=configuration["callbackUrl"],
            headers=headers,
            auth=WebhookAuth(configuration.get("auth")),
            signing_key=decode_secret(secret) if secret else None,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            deadline_s=max(config.webhook_delivery_timeout_ms / 1000.0,
                           connect_timeout_s + read_timeout_s),
            max_connections=max_connections if isinstance(max_connections, int)
            and not isinstance(max_connections, bool) and max_connections > 0 else 5,
        )


def configuration_problems(configuration: Any) -> list[str]:
    """Every problem of a webhook subscription configuration (shape only, no SSRF check)."""
    if not isinstance(configuration, Mapping):
        return ["configuration must be an object"]
    problems: list[str] = []
    try:
        split_callback_url(configuration.get("callbackUrl"))
    except BadRequestError as exc:
        problems.append(exc.message)
    headers = configuration.get("headers")
    if headers is not None:
        if not isinstance(headers, list):
            problems.append("headers must be a list of {name, value}")
        else:
            for index, item in enumerate(headers):
                if not isinstance(item, Mapping) or not header_allowed(item.get("name")):
                    problems.append(f"headers[{index}].name must be an HTTP header name "
                                    f"(not {', '.join(sorted(RESERVED_HEADERS))})")
                elif header_value(item.get("value")) is None:
                    problems.append(f"headers[{index}].value must be a single-line string")
    auth = configuration.get("auth")
    if auth is not None:
        if not isinstance(auth, Mapping):
            problems.append("auth must be an object")
        else:
            try:
                WebhookAuth(auth)
            except AuthError as exc:
                problems.append(str(exc))
    secret = configuration.get("secret")
    if secret is not None:
        try:
            decode_secret(secret)
        except InvalidSecret as exc:
            problems.append(str(exc))
    return problems


def validate_subscription_configuration(configuration: Any, policy: SsrfPolicy) -> None:
    """For the subscription service: raise a 400 (BadRequestError subclass) when a webhook
    subscription's configuration is unusable or its callback URL is refused (SSRF)."""
    problems = configuration_problems(configuration)
    if problems:
        raise InvalidSubscriptionConfiguration("invalid webhook subscription: " +
                                               "; ".join(problems))
    check_callback_url(configuration["callbackUrl"], policy)


def check_subscription_callback(configuration: Any, policy: SsrfPolicy,
                                path: str = "$.configuration") -> None:
    """For the subscription service (create and update, whoever calls: management, portal,
    CLI): a configuration that carries a callbackUrl or names the webhook entrypoint must have
    a callback (and an oauth2 token endpoint, the other URL the gateway calls for it) the SSRF
    policy allows, whatever the plan's security (the dispatcher delivers any ACCEPTED
    subscription of a webhook API). Else a 400 `subscription.callbackUrl.invalid` whose
    `parameters` give the field's JSON path and the reason."""
    if not isinstance(configuration, Mapping) or (
            "callbackUrl" not in configuration and configuration.get("entrypointId") != "webhook"):
        return
    urls = [(".callbackUrl", "callbackUrl", configuration.get("callbackUrl"))]
    auth = configuration.get("auth")
    oauth2 = auth.get("oauth2") if isinstance(auth, Mapping) else None
    if isinstance(auth, Mapping) and str(auth.get("type") or "").lower() == "oauth2" \
            and isinstance(oauth2, Mapping):
        urls.append((".auth.oauth2.endpoint", "auth.oauth2.endpoint", oauth2.get("endpoint")))
    for sub_path, name, url in urls:
        field = path + sub_path
        try:
            check_callback_url(url, policy, name=name)
        except CallbackUrlRefused as exc:
            raise CallbackUrlRefused(f"{field}: {exc.message}",
                                     details={"path": field, "reason": exc.message}) from None
