"""Pydantic model of the V4 API definition (Gravitee 3.20 and 4.x shapes).

Unknown fields are kept (`extra="allow"`) so a definition written for Gravitee round-trips
through evgate unchanged; the fields evgate acts on are typed and checked. Both spellings are
accepted where Gravitee changed them between 3.20 and 4.x (`type: async|message`,
`flowMode|flowExecution`, `inheritConfiguration|inheritConfig`, plan security `key-less|KEY_LESS`).
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_API_TYPES = {"async": "message", "message": "message", "sync": "proxy", "proxy": "proxy"}
#: Bounds of the values the repository stores in columns of their own (ids String(64), names
#: String(255), plan order INTEGER): past them PostgreSQL refuses the row, so they are 400s.
ID_MAX_LENGTH = 64
NAME_MAX_LENGTH = 255
DESCRIPTION_MAX_LENGTH = 10_000
_INT32 = (-2 ** 31, 2 ** 31 - 1)
_QOS = ("none", "auto", "at-most-once", "at-least-once")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ListenerPath(_Model):
    path: str
    host: Optional[str] = None
    overrideAccess: Optional[bool] = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        if "//" in value or any(c.isspace() for c in value):
            raise ValueError("must not contain '//' or white space")
        # Normalised without the trailing slash ("/a/" and "/a" are one listener).
        return value.rstrip("/") or "/"


class EntrypointDefinition(_Model):
    type: str
    qos: str = "auto"
    configuration: dict[str, Any] = Field(default_factory=dict)
    dlq: Optional[dict[str, Any]] = None

    @field_validator("qos", mode="before")
    @classmethod
    def _qos(cls, value: Any) -> str:
        if value is None:
            return "auto"
        normalized = str(value).strip().lower().replace("_", "-")
        if normalized not in _QOS:
            raise ValueError(f"must be one of {', '.join(_QOS)}")
        return normalized

    @field_validator("configuration", mode="before")
    @classmethod
    def _configuration(cls, value: Any) -> Any:
        return {} if value is None else value


class Cors(_Model):
    """Gravitee 4.x's `cors` block of an HTTP listener (its mAPI v2 schema `Cors`). The origin
    patterns are checked and compiled by evgate/gateway/cors.py (semantic checks)."""

    enabled: bool = False
    allowOrigin: list[str] = Field(default_factory=list)
    allowHeaders: list[str] = Field(default_factory=list)
    allowMethods: list[str] = Field(default_factory=list)
    allowCredentials: bool = False
    exposeHeaders: list[str] = Field(default_factory=list)
    maxAge: int = Field(default=-1, ge=-1, le=2 ** 31 - 1)
    runPolicies: bool = False
    allowPrivateNetwork: bool = False

    @field_validator("allowOrigin", "allowHeaders", "allowMethods", "exposeHeaders",
                     mode="before")
    @classmethod
    def _none_to_list(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("maxAge", mode="before")
    @classmethod
    def _max_age(cls, value: Any) -> Any:
        return -1 if value is None else value


class Listener(_Model):
    type: str = "http"
    paths: list[ListenerPath] = Field(default_factory=list)
    entrypoints: list[EntrypointDefinition] = Field(default_factory=list)
    servers: Optional[list[str]] = None
    cors: Optional[Cors] = None

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> str:
        normalized = str(value).strip().lower()
        if normalized not in ("http", "subscription", "tcp"):
            raise ValueError("must be one of http, subscription")
        return normalized


class EndpointDefinition(_Model):
    name: str = "default"
    type: str
    weight: int = 1
    inheritConfiguration: bool = Field(default=False, alias="inheritConfiguration")
    configuration: dict[str, Any] = Field(default_factory=dict)
    sharedConfigurationOverride: dict[str, Any] = Field(default_factory=dict)

    @field_validator("configuration", "sharedConfigurationOverride", mode="before")
    @classmethod
    def _none_to_dict(cls, value: Any) -> Any:
        return {} if value is None else value

    def __init__(self, **data: Any):
        if "inheritConfig" in data and "inheritConfiguration" not in data:
            data["inheritConfiguration"] = data["inheritConfig"]
        super().__init__(**data)


class EndpointGroup(_Model):
    name: str = "default"
    type: str
    loadBalancer: Optional[dict[str, Any]] = None
    sharedConfiguration: dict[str, Any] = Field(default_factory=dict)
    endpoints: list[EndpointDefinition] = Field(default_factory=list)

    @field_validator("sharedConfiguration", mode="before")
    @classmethod
    def _shared(cls, value: Any) -> Any:
        return {} if value is None else value


class Step(_Model):
    name: Optional[str] = None
    description: Optional[str] = None
    enabled: bool = True
    policy: str
    configuration: dict[str, Any] = Field(default_factory=dict)
    condition: Optional[str] = None
    messageCondition: Optional[str] = None

    @field_validator("configuration", mode="before")
    @classmethod
    def _configuration(cls, value: Any) -> Any:
        return {} if value is None else value


class Selector(_Model):
    type: str
    path: Optional[str] = None
    pathOperator: Optional[str] = None
    methods: Optional[list[str]] = None
    channel: Optional[str] = None
    channelOperator: Optional[str] = None
    operations: Optional[list[str]] = None
    entrypoints: Optional[list[str]] = None
    condition: Optional[str] = None

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> str:
        normalized = str(value).strip().lower()
        if normalized not in ("http", "channel", "condition"):
            raise ValueError("must be one of http, channel, condition")
        return normalized


class Flow(_Model):
    name: Optional[str] = None
    enabled: bool = True
    selectors: list[Selector] = Field(default_factory=list)
    request: list[Step] = Field(default_factory=list)
    response: list[Step] = Field(default_factory=list)
    publish: list[Step] = Field(default_factory=list)
    subscribe: list[Step] = Field(default_factory=list)

    @field_validator("selectors", "request", "response", "publish", "subscribe", mode="before")
    @classmethod
    def _none_to_list(cls, value: Any) -> Any:
        return [] if value is None else value


_SECURITY_TYPES = {
    "key-less": "key-less", "key_less": "key-less", "keyless": "key-less",
    "api-key": "api-key", "api_key": "api-key", "apikey": "api-key",
    "jwt": "jwt", "oauth2": "oauth2", "subscription": "subscription", "push": "subscription",
    "mtls": "mtls",
}


class PlanSecurity(_Model):
    type: str
    configuration: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> str:
        normalized = _SECURITY_TYPES.get(str(value).strip().lower())
        if normalized is None:
            raise ValueError("must be one of key-less, api-key, jwt, oauth2, subscription")
        return normalized

    @field_validator("configuration", mode="before")
    @classmethod
    def _configuration(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, str):  # 3.20 stores plan security configuration as a JSON string
            import json
            try:
                return json.loads(value) if value.strip() else {}
            except ValueError:
                raise ValueError("must be a JSON object") from None
        return value


class PlanDefinition(_Model):
    id: Optional[str] = Field(None, max_length=ID_MAX_LENGTH)
    name: str = Field("Default plan", max_length=NAME_MAX_LENGTH)
    description: Optional[str] = Field(None, max_length=DESCRIPTION_MAX_LENGTH)
    security: PlanSecurity = Field(default_factory=lambda: PlanSecurity(type="key-less"))
    mode: Optional[str] = None
    status: str = "staging"
    validation: str = "auto"
    flows: list[Flow] = Field(default_factory=list)
    selectionRule: Optional[str] = None
    tags: list[str] = Field(default_factory=list)
    order: int = Field(0, ge=_INT32[0], le=_INT32[1])

    @model_validator(mode="before")
    @classmethod
    def _push_mode(cls, data: Any) -> Any:
        # 4.x: a PUSH plan (webhook subscriptions) carries no `security`; evgate's name for
        # that plan handler is `subscription`.
        if isinstance(data, dict) and str(data.get("mode") or "").strip().upper() == "PUSH" \
                and not data.get("security"):
            data = {**data, "security": {"type": "subscription"}}
        return data

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        if value is None:
            return None
        normalized = str(value).strip().upper()
        if normalized not in ("STANDARD", "PUSH"):
            raise ValueError("must be STANDARD or PUSH")
        return normalized

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> str:
        normalized = str(value or "staging").strip().lower()
        if normalized not in ("staging", "published", "deprecated", "closed"):
            raise ValueError("must be one of staging, published, deprecated, closed")
        return normalized

    @field_validator("validation", mode="before")
    @classmethod
    def _validation(cls, value: Any) -> str:
        normalized = str(value or "auto").strip().lower()
        if normalized not in ("auto", "manual"):
            raise ValueError("must be auto or manual")
        return normalized

    @field_validator("flows", "tags", mode="before")
    @classmethod
    def _none_to_list(cls, value: Any) -> Any:
        return [] if value is None else value


class ApiDefinition(_Model):
    id: Optional[str] = Field(None, max_length=ID_MAX_LENGTH)
    name: str = Field(max_length=NAME_MAX_LENGTH)
    apiVersion: str = "1.0"
    definitionVersion: str = "4.0.0"
    type: Literal["message", "proxy"] = "message"
    description: Optional[str] = Field(None, max_length=DESCRIPTION_MAX_LENGTH)
    tags: list[str] = Field(default_factory=list)
    listeners: list[Listener]
    endpointGroups: list[EndpointGroup]
    flows: list[Flow] = Field(default_factory=list)
    flowMode: Optional[str] = None
    flowExecution: Optional[dict[str, Any]] = None
    plans: list[PlanDefinition] = Field(default_factory=list)
    properties: list[dict[str, Any]] = Field(default_factory=list)
    resources: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> str:
        normalized = _API_TYPES.get(str(value or "message").strip().lower())
        if normalized is None:
            raise ValueError("must be one of async, sync, message, proxy")
        return normalized

    @field_validator("definitionVersion", mode="before")
    @classmethod
    def _definition_version(cls, value: Any) -> str:
        text = str(value or "4.0.0").strip()
        # 3.20 writes "4.0.0", 4.x writes "V4"; both are the V4 definition.
        if not (text.startswith("4") or text.upper() == "V4"):
            raise ValueError('only V4 definitions (definitionVersion "V4" or 4.x) are supported')
        return text

    @field_validator("flows", "plans", "tags", "properties", "resources", mode="before")
    @classmethod
    def _none_to_list(cls, value: Any) -> Any:
        return [] if value is None else value

    def http_paths(self) -> list[str]:
        return [p.path for listener in self.listeners if listener.type == "http"
                for p in listener.paths]

    def entrypoints(self) -> list[EntrypointDefinition]:
        return [e for listener in self.listeners for e in listener.entrypoints]
