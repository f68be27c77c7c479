"""The shapes of Gravitee 4.x's management API v2, in one place, both ways.

evgate stores one form of each entity (the definition as the client sent it, plan security
types in evgate's lower-case names, a subscription's configuration flat); the mAPI v2 shows
them the way APIM 4.x answers:

- APIs: `definitionVersion: "V4"`, `type: "MESSAGE"`, listener types `HTTP` / `SUBSCRIPTION`;
- plans: `security.type` `KEY_LESS` / `API_KEY` / `JWT` ..., `mode` `STANDARD`, or `PUSH`
  without `security` (evgate's `subscription` plan handler), statuses and validation in
  upper case;
- subscriptions: `consumerConfiguration {entrypointId, channel, entrypointConfiguration}`
  (stored flat: `{entrypointId, channel, callbackUrl, headers, ...}`, what the webhook runtime
  reads), `consumerStatus: FAILURE` where evgate's status is FAILURE (4.x keeps the
  subscription ACCEPTED and marks the consumer side failed).
"""
from __future__ import annotations

import copy
from typing import Any

#: evgate's plan security type -> the 4.x `PlanSecurityType`.
SECURITY_TYPES_V2 = {"key-less": "KEY_LESS", "api-key": "API_KEY", "jwt": "JWT",
                     "oauth2": "OAUTH2", "mtls": "MTLS"}
_CONSUMER_KEYS = ("entrypointId", "channel")


def flat_consumer_configuration(configuration: Any) -> Any:
    """A 4.x `{entrypointId, channel, entrypointConfiguration: {...}}` as evgate stores it:
    the entrypoint's fields beside entrypointId. Anything else is returned unchanged (the
    3.20 shape is already flat; wrong types are reported by the caller)."""
    if not isinstance(configuration, dict) or "entrypointConfiguration" not in configuration:
        return configuration
    nested = configuration["entrypointConfiguration"]
    flat = {k: v for k, v in configuration.items() if k != "entrypointConfiguration"}
    if nested is None:
        return flat
    if not isinstance(nested, dict):
        from ..errors import BadRequestError
        raise BadRequestError("$.configuration.entrypointConfiguration: must be an object",
                              key="subscription.configuration.invalid")
    clash = sorted(set(nested) & set(_CONSUMER_KEYS))
    if clash:
        from ..errors import BadRequestError
        raise BadRequestError(f"$.configuration.entrypointConfiguration.{clash[0]}: belongs "
                              "beside entrypointConfiguration, not in it",
                              key="subscription.configuration.invalid")
    flat.update(nested)
    return flat


def consumer_configuration_location_v2(location: str) -> str:
    """A JSON path into a stored (flat) subscription configuration, `$.configuration...`, as
    the place it has in a v2 body (`$.consumerConfiguration...`, the entrypoint's fields
    under `entrypointConfiguration`). Other paths are returned unchanged."""
    prefix = "$.configuration"
    if location != prefix and not location.startswith((prefix + ".", prefix + "[")):
        return location
    rest = location[len(prefix):]
    head = rest[1:].split(".", 1)[0].split("[", 1)[0] if rest.startswith(".") else ""
    if not head or head in _CONSUMER_KEYS or head == "entrypointConfiguration":
        return "$.consumerConfiguration" + rest
    return "$.consumerConfiguration.entrypointConfiguration" + rest


def consumer_configuration_v2(configuration: dict[str, Any]) -> dict[str, Any]:
    """A stored (flat) subscription configuration in the 4.x nested shape."""
    shown = {k: configuration[k] for k in _CONSUMER_KEYS if k in configuration}
    rest = {k: v for k, v in configuration.items() if k not in _CONSUMER_KEYS}
    if rest or shown:
        shown["entrypointConfiguration"] = rest
    return shown


def api_v2(entity: dict[str, Any]) -> dict[str, Any]:
    """An API entity (services.apis) as the mAPI v2 shows it; plans have their own resource."""
    api = copy.deepcopy(entity)
    api.pop("plans", None)
    api["definitionVersion"] = "V4"
    kind = str(api.get("type") or "message").lower()
    api["type"] = {"async": "MESSAGE", "sync": "PROXY"}.get(kind, kind.upper())
    for listener in api.get("listeners") or []:
        if isinstance(listener, dict) and isinstance(listener.get("type"), str):
            listener["type"] = listener["type"].upper()
        for entrypoint in (listener.get("entrypoints") or []) if isinstance(listener, dict) \
                else []:
            if isinstance(entrypoint, dict) and isinstance(entrypoint.get("qos"), str):
                entrypoint["qos"] = entrypoint["qos"].upper().replace("-", "_")
    api.setdefault("analytics", {"enabled": False})
    return api


def plan_v2(plan: dict[str, Any]) -> dict[str, Any]:
    """A plan (services.plans) in the 4.x shape."""
    shown = copy.deepcopy(plan)
    security = shown.pop("security", None) or {}
    kind = security.get("type")
    shown["definitionVersion"] = "V4"
    if kind == "subscription":
        shown["mode"] = "PUSH"
    else:
        shown["mode"] = "STANDARD"
        shown["security"] = {**security, "type": SECURITY_TYPES_V2.get(kind, str(kind).upper())}
    for field in ("status", "validation"):
        if isinstance(shown.get(field), str):
            shown[field] = shown[field].upper()
    shown.setdefault("characteristics", [])
    return shown


def subscription_v2(sub: dict[str, Any]) -> dict[str, Any]:
    """A subscription (services.subscriptions) in the 4.x shape (its keys have a resource)."""
    failed = sub["status"] == "FAILURE"
    return {
        "id": sub["id"], "api": {"id": sub["api"]}, "plan": {"id": sub["plan"]},
        "application": {"id": sub["application"]},
        "status": "ACCEPTED" if failed else sub["status"],
        "consumerStatus": "FAILURE" if failed else sub["consumerStatus"],
        "consumerConfiguration": consumer_configuration_v2(sub["configuration"] or {}),
        "metadata": sub["metadata"], "failureCause": sub["failureCause"],
        "createdAt": sub["createdAt"], "updatedAt": sub["updatedAt"],
    }


def subscriber_v2(app: dict[str, Any]) -> dict[str, Any]:
    """An application row (repository) as 4.x's BaseApplication (`/apis/{id}/subscribers`)."""
    definition = app.get("definition") or {}
    owner = app.get("owner")
    return {"id": app["id"], "name": app["name"], "description": app.get("description"),
            "domain": definition.get("domain"), "type": definition.get("type") or "SIMPLE",
            "primaryOwner": {"id": owner, "displayName": owner, "type": "USER"} if owner
            else None,
            "apiKeyMode": definition.get("apiKeyMode") or "UNSPECIFIED"}


def subscription_body(body: dict[str, Any]) -> dict[str, Any]:
    """A v2 create/update body (`consumerConfiguration`, `metadata`) as the service takes it."""
    out: dict[str, Any] = {}
    if "consumerConfiguration" in body:
        out["configuration"] = body["consumerConfiguration"]
    if "metadata" in body:
        out["metadata"] = body["metadata"]
    return out


def definition_from_export(document: Any) -> Any:
    """The definition (plans embedded) from what `_export/definition` gives: `{api, plans}`.
    A bare definition is returned as is."""
    if not isinstance(document, dict) or not isinstance(document.get("api"), dict) \
            or "listeners" in document:
        return document
    definition = dict(document["api"])
    plans = document.get("plans", definition.get("plans"))
    definition["plans"] = plans if plans is not None else []
    return definition
