"""Helpers for the flow and policy unit tests: a DeployedApi on the mock endpoint (no Kafka),
werkzeug requests and contexts."""
from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from evgate.config import Config
from evgate.core.context import ExecutionContext
from evgate.gateway.deployment import DeployedApi
from evgate.core.message import Message


def definition(flows=(), *, entrypoints=("http-post",), plans=()) -> dict[str, Any]:
    return {
        "id": "api-1", "name": "policies", "type": "message",
        "listeners": [{"type": "http", "paths": [{"path": "/t"}],
                       "entrypoints": [{"type": t} for t in entrypoints]}],
        "endpointGroups": [{"name": "d", "type": "mock",
                            "endpoints": [{"name": "d", "type": "mock"}]}],
        "flows": list(flows), "plans": list(plans),
    }


def deploy(flows=(), *, plans=(), **kwargs) -> DeployedApi:
    runtime = SimpleNamespace(config=Config.from_env({}))
    return DeployedApi(definition(flows, **kwargs), list(plans), runtime)


def steps(phase: str, *items: dict[str, Any], **flow: Any) -> dict[str, Any]:
    """One flow with `items` as the steps of `phase`."""
    return {phase: list(items), **flow}


def step(policy: str, **configuration: Any) -> dict[str, Any]:
    return {"policy": policy, "configuration": configuration}


def request(path: str = "/t", method: str = "POST", headers: dict | None = None,
            remote_addr: str = "10.0.0.1") -> Request:
    builder = EnvironBuilder(path=path, method=method, headers=headers or {},
                             environ_base={"REMOTE_ADDR": remote_addr})
    return Request(builder.get_environ())


def context(api: DeployedApi, *, path: str | None = "/t", relative: str = "/",
            method: str = "POST", headers: dict | None = None, entrypoint: str = "http-post",
            remote_addr: str = "10.0.0.1", **kwargs: Any) -> ExecutionContext:
    req = request(path, method, headers, remote_addr) if path is not None else None
    ctx = ExecutionContext(api=api, request=req, entrypoint_type=entrypoint, **kwargs)
    if req is not None:
        ctx.attributes["gravitee.attribute.request.relativePath"] = relative
    return ctx


def message(content: Any = b"", **kwargs: Any) -> Message:
    if not isinstance(content, bytes):
        content = json.dumps(content).encode()
    return Message(content=content, **kwargs)


def only_policy(api: DeployedApi, phase: str):
    return api.flows.flows[0].phases[phase][0].policy
