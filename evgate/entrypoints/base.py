"""The entrypoint interface and the request negotiation between an API's entrypoints.

An http listener may offer several entrypoints on one path (http-post, http-get, sse,
websocket). For each request the gateway asks each entrypoint `matches(request)`; the first
that matches handles it. When none matches, `allows_method` tells a 405 (no entrypoint takes
that method) from a 406 (one takes the method but not what the client accepts).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

from ..definition import plugin_config

if TYPE_CHECKING:
    from flask import Request, Response

    from ..definition import EntrypointDefinition
    from ..core.context import ExecutionContext
    from ..core.spi import Pipeline


class Entrypoint:
    type: ClassVar[str] = ""
    #: "publish" (client -> endpoint), "subscribe" (endpoint -> client), or both.
    modes: ClassVar[frozenset[str]] = frozenset()
    #: Lower runs first when several entrypoints share a path (websocket before sse before get).
    priority: ClassVar[int] = 100
    #: HTTP methods this entrypoint serves (for the 405 Allow header).
    methods: ClassVar[frozenset[str]] = frozenset()
    supported_qos: ClassVar[frozenset[str]] = frozenset({"none", "auto"})
    #: True when `handle` needs no Flask request context (it uses `ctx.request`, never
    #: `flask.request` / `stream_with_context`): the gateway then serves it on its raw-WSGI
    #: fast path (evgate/gateway/wsgi_dispatch.py). Off by default (safe for plugins).
    raw_wsgi: ClassVar[bool] = False
    #: the pydantic model of `configuration` (validation, secrets, JSON schema)
    configuration_model: ClassVar[type | None] = None

    def __init__(self, definition: "EntrypointDefinition", api: "Pipeline"):
        self.definition = definition
        self.configuration = definition.configuration
        self.qos = definition.qos
        self.api = api

    @classmethod
    def validate_configuration(cls, configuration: Mapping[str, Any],
                               definition: Any) -> Iterable[tuple[str, str]]:
        """(sub-path, message) pairs for each problem; the sub-path starts with '.' or '['.
        The default checks `configuration_model`; override to add checks that need the
        definition (call super)."""
        return plugin_config.problems(cls.configuration_model, configuration)

    def matches(self, request: "Request") -> bool:
        return request.method in self.methods

    def allows_method(self, method: str) -> bool:
        return method in self.methods

    def start(self) -> None:
        """Called when the API is deployed on this worker."""

    def stop(self) -> None:
        """Called when the API is undeployed or the worker drains; must not raise."""

    def handle(self, ctx: "ExecutionContext") -> "Response":
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} api={self.api.id}>"
