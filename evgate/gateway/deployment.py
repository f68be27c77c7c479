"""A deployed API on one worker: its entrypoints, endpoint, plans and compiled flows.

Built from the definition the repository says is deployed; rebuilt only when that definition
or the API's plans change (its `fingerprint`), so other APIs' connections are untouched by a
redeploy.
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, Sequence

from .. import plugins
from ..definition import parse_definition
from ..definition.validate import effective_configuration
from ..errors import BadRequestError, MethodNotAllowedError, NotAcceptableError
from ..policies.chain import FlowChain
from .cors import CorsPolicy
from .pipeline import MessagePipeline
from ..security.plans import admit, build_handlers

if TYPE_CHECKING:
    from ..endpoints.base import Endpoint
    from ..entrypoints.base import Entrypoint
    from ..core.context import ExecutionContext
    from ..core.spi import Runtime

logger = logging.getLogger(__name__)


def fingerprint(definition: dict[str, Any], plans: Sequence[dict[str, Any]]) -> str:
    stable = [{k: v for k, v in p.items() if k not in ("createdAt", "updatedAt")} for p in plans]
    text = json.dumps([definition, stable], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DeployedApi(MessagePipeline):
    """One API deployed on this worker: its endpoint, entrypoints, plans and flows; the
    pipeline (publish / open_stream) is `MessagePipeline`."""

    def __init__(self, definition: dict[str, Any], plans: list[dict[str, Any]],
                 runtime: "Runtime"):
        self.raw = definition
        self.definition = parse_definition(definition)
        self.id: str = definition["id"]
        self.name = self.definition.name
        self.runtime = runtime
        self.fingerprint = fingerprint(definition, plans)
        self.properties = {p.get("key"): p.get("value") for p in self.definition.properties
                           if isinstance(p, dict)}
        self.paths = self.definition.http_paths()
        #: (listener path, compiled policy) of the http listeners with CORS enabled
        self.cors: list[tuple[str, CorsPolicy]] = _cors_policies(self.definition)
        self.endpoint: "Endpoint" = self._build_endpoint()
        #: other endpoints the API names (a webhook DLQ), built on first use
        self._named_endpoints: dict[str, "Endpoint | None"] = {}
        self.entrypoints: list["Entrypoint"] = []       # http listeners, by priority
        self.subscription_entrypoints: list["Entrypoint"] = []  # webhook listeners
        for listener in self.definition.listeners:
            for ep_def in listener.entrypoints:
                cls = plugins.load("entrypoints", ep_def.type)
                entrypoint = cls(ep_def, self)
                target = (self.entrypoints if listener.type == "http"
                          else self.subscription_entrypoints)
                target.append(entrypoint)
        self.entrypoints.sort(key=lambda e: e.priority)
        self.plans = plans
        self.plan_handlers = build_handlers(plans, self)
        self.flows = FlowChain(self.definition.flows, self)
        self.plan_flows = {p["id"]: FlowChain(_plan_flows(p), self, f"plan {p['id']} $.flows")
                           for p in plans}
        # Decided once here, not per request (bench/ingest.py): an API whose plans and API
        # carry no flow has no chain to walk, and one whose request plans are all key-less
        # admits with the first of them (what `admit` would conclude after its checks).
        self._no_flows = not self.flows.flows and not any(
            chain.flows for chain in self.plan_flows.values())
        serving = [h for h in self.plan_handlers if h.serves_requests]
        self._keyless = serving[0] if serving and all(
            h.type == "key-less" for h in serving) else None

    def __repr__(self) -> str:
        return f"<DeployedApi {self.id} {self.name!r} paths={self.paths}>"

    def _build_endpoint(self, group: Any = None, endpoint_def: Any = None) -> "Endpoint":
        group = group or self.definition.endpointGroups[0]
        endpoint_def = endpoint_def or group.endpoints[0]
        cls = plugins.load("endpoints", endpoint_def.type)
        return cls(endpoint_def.name, effective_configuration(group, endpoint_def),
                   self.runtime, self.id)

    def endpoint_named(self, name: Any) -> "Endpoint | None":
        """The endpoint of the group or endpoint called `name` (a webhook's `dlq.endpoint`),
        built and started once, stopped with the API; None when the API has no such one."""
        if name in self._named_endpoints:
            return self._named_endpoints[name]
        found = None
        for group in self.definition.endpointGroups:
            for endpoint_def in group.endpoints:
                if found is None and name in (group.name, endpoint_def.name):
                    found = self._build_endpoint(group, endpoint_def)
                    found.start()
        self._named_endpoints[name] = found
        return found

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.endpoint.start()
        for entrypoint in self.entrypoints + self.subscription_entrypoints:
            entrypoint.start()

    def stop(self) -> None:
        named = [e for e in self._named_endpoints.values() if e is not None]
        for component in self.entrypoints + self.subscription_entrypoints + [self.endpoint] \
                + named:
            try:
                component.stop()
            except Exception:  # noqa: BLE001 - stop must not raise; log and go on
                logger.exception("stopping %r failed", component)

    # -- request handling ---------------------------------------------------------------------
    def cors_for(self, path: str) -> CorsPolicy | None:
        """The CORS policy of the listener whose path (the longest) matches `path`."""
        if not self.cors:
            return None
        if len(self.cors) == 1 and len(self.paths) == 1:
            return self.cors[0][1]
        best: tuple[int, CorsPolicy | None] = (-1, None)
        for prefix in self.paths:
            if (prefix == "/" or path == prefix or path.startswith(prefix + "/")) \
                    and len(prefix) > best[0]:
                best = (len(prefix), dict(self.cors).get(prefix))
        return best[1]

    def select_entrypoint(self, request: Any) -> "Entrypoint":
        for entrypoint in self.entrypoints:
            if entrypoint.matches(request):
                return entrypoint
        allowed = sorted({m for e in self.entrypoints for m in e.methods})
        if any(e.allows_method(request.method) for e in self.entrypoints):
            raise NotAcceptableError(
                "no entrypoint of this API accepts the request's Accept/Upgrade headers",
                key="NO_ENTRYPOINT_MATCH")
        raise MethodNotAllowedError(f"method {request.method} is not allowed on this API",
                                    headers={"Allow": ", ".join(allowed)})

    def check_qos(self, entrypoint: "Entrypoint") -> None:
        if entrypoint.qos not in self.endpoint.supported_qos:
            raise BadRequestError(
                f"entrypoint qos {entrypoint.qos!r} is not supported by the {self.endpoint.type} "
                "endpoint", key="INCOMPATIBLE_QOS")

    def admit(self, ctx: "ExecutionContext") -> None:
        if self._keyless is not None:
            self._keyless.authenticate(ctx)
            return
        admit(self.plan_handlers, ctx)

    def _chains(self, ctx: "ExecutionContext") -> list[FlowChain]:
        if self._no_flows:
            return []
        chains = [self.flows]
        plan_id = (ctx.plan or {}).get("id")
        if plan_id in self.plan_flows:
            chains.append(self.plan_flows[plan_id])
        return chains

    def run_request_phase(self, ctx: "ExecutionContext") -> None:
        """Request-phase policies; a GatewayError they raise answers the client."""
        for chain in self._chains(ctx):
            chain.run_request(ctx)

    def run_response_phase(self, ctx: "ExecutionContext", response: Any) -> Any:
        """Headers the request phase asked for (e.g. X-Rate-Limit-*), then the response-phase
        policies; returns the response to send."""
        if getattr(response, "headers", None) is None:
            return response
        for name, value in ctx.response_headers.items():
            response.headers[name] = value
        ctx.response = response
        for chain in self._chains(ctx):
            response = chain.run_response(ctx, response)
        return response


def _cors_policies(definition: Any) -> list[tuple[str, CorsPolicy]]:
    return [(p.path, CorsPolicy(listener.cors)) for listener in definition.listeners
            if listener.type == "http" and listener.cors is not None and listener.cors.enabled
            for p in listener.paths]


def _plan_flows(plan: dict[str, Any]) -> list[Any]:
    from ..definition.model import Flow
    return [Flow.model_validate(f) for f in plan.get("flows") or []]
