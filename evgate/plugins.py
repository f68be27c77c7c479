"""The registry of connector and policy types (gunicorn's worker table, datasette's plugins).

Built-ins are a table of import paths, loaded lazily on first use; third-party packages add
types through the `importlib.metadata` entry-point groups `evgate.entrypoints`,
`evgate.endpoints` and `evgate.policies`. Built-ins register exactly like plugins; a plugin may
not silently replace a built-in (the built-in wins and a warning is logged).

Each type describes its configuration with a pydantic model (`configuration_model`, see
evgate/definition/plugin_config.py); `schema(kind, type)` publishes it as a JSON schema for the
plugin catalogue of the management API.
"""
from __future__ import annotations

import importlib
import logging
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from .definition.plugin_config import json_schema

logger = logging.getLogger(__name__)

BUILTINS: dict[str, dict[str, str]] = {
    "entrypoints": {
        "http-post": "evgate.entrypoints.http_post:HttpPostEntrypoint",
        "http-get": "evgate.entrypoints.http_get:HttpGetEntrypoint",
        "sse": "evgate.entrypoints.sse:SseEntrypoint",
        "websocket": "evgate.entrypoints.websocket:WebSocketEntrypoint",
        "webhook": "evgate.entrypoints.webhook:WebhookEntrypoint",
    },
    "endpoints": {
        "kafka": "evgate.endpoints.kafka:KafkaEndpoint",
        # Gravitee 3.20's enterprise name for the same connector (Postman folder 02).
        "kafka-advanced": "evgate.endpoints.kafka:KafkaEndpoint",
        "mock": "evgate.endpoints.mock:MockEndpoint",
    },
    "policies": {
        "message-filtering": "evgate.policies.message_filtering:MessageFilteringPolicy",
        "transform-headers": "evgate.policies.transform_headers:TransformHeadersPolicy",
        "assign-attributes": "evgate.policies.assign_attributes:AssignAttributesPolicy",
        "assign-content": "evgate.policies.assign_content:AssignContentPolicy",
        "cloud-events": "evgate.policies.cloud_events:CloudEventsPolicy",
        "rate-limit": "evgate.policies.rate_limit:RateLimitPolicy",
    },
}

KINDS = tuple(BUILTINS)


@lru_cache(maxsize=None)
def _table(kind: str) -> dict[str, str]:
    if kind not in BUILTINS:
        raise KeyError(f"unknown plugin kind {kind!r}")
    table = dict(BUILTINS[kind])
    for ep in entry_points(group=f"evgate.{kind}"):
        if ep.name in table:
            logger.warning("plugin %s tries to replace built-in %s type %r; ignored",
                           ep.value, kind, ep.name)
            continue
        table[ep.name] = ep.value
    return table


def known(kind: str) -> list[str]:
    return sorted(_table(kind))


def is_known(kind: str, type_: str) -> bool:
    return type_ in _table(kind)


@lru_cache(maxsize=None)
def load(kind: str, type_: str) -> Any:
    """The class registered for `type_`; a missing optional dependency fails loudly."""
    target = _table(kind).get(type_)
    if target is None:
        raise KeyError(f"unknown {kind} type {type_!r} (known: {', '.join(known(kind))})")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"{kind} type {type_!r} needs {exc.name!r}: "
                          f"pip install {exc.name} ({exc})") from exc
    return getattr(module, attr)


def schema(kind: str, type_: str) -> dict[str, Any]:
    """The JSON schema of a type's configuration; KeyError for an unknown kind or type.
    Secret fields are `writeOnly` with `format: password` (responses show them as ****)."""
    return json_schema(getattr(load(kind, type_), "configuration_model", None))


def subscription_schema(type_: str) -> dict[str, Any] | None:
    """The JSON schema of what a subscriber configures for an entrypoint type (webhook's
    callback, auth, signing secret); None when the entrypoint takes no subscription
    configuration."""
    model = getattr(load("entrypoints", type_), "subscription_configuration_model", None)
    return None if model is None else json_schema(model)


def configuration_schema(kind: str, type_: str) -> dict[str, Any]:
    """The JSON schema the mAPI v2 plugin catalogue serves (`/plugins/{kind}/{id}/schema`):
    generated from the class's `configuration_model`, the one declaration it makes."""
    return schema(kind, type_)
