"""Turn raw JSON into an `ApiDefinition`, collecting every problem with its JSON path.

Structural checks come from the pydantic model; the checks pydantic cannot know (entrypoint and
endpoint types registered, listener paths unique, at least one entrypoint) are made here, and
each connector may add its own through `validate_configuration` on its class.
"""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .. import plugins
from ..errors import DefinitionError
from .cors import cors_problems
from .flows import flow_definition_problems
from .model import ApiDefinition, PlanDefinition


def _json_path(loc: tuple[Any, ...]) -> str:
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _pydantic_problems(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[dict[str, str]]:
    problems = []
    for error in exc.errors():
        # Drop pydantic's validator-internal location parts (e.g. 'function-after[...]').
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
        message = error["msg"].removeprefix("Value error, ")
        problems.append({"path": _json_path(prefix + loc), "message": message})
    return problems


def parse_definition(data: Any, *, check_connectors: bool = True) -> ApiDefinition:
    """Validate raw JSON (a dict) and return the model; raise DefinitionError with all problems."""
    if not isinstance(data, dict):
        raise DefinitionError([{"path": "$", "message": "an API definition must be a JSON object"}])
    try:
        api = ApiDefinition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(_pydantic_problems(exc)) from None
    problems = semantic_problems(api) if check_connectors else []
    if problems:
        raise DefinitionError(problems)
    return api


def parse_plan(data: Any, *, path: str = "$") -> PlanDefinition:
    if not isinstance(data, dict):
        raise DefinitionError([{"path": path, "message": "a plan must be a JSON object"}])
    try:
        return PlanDefinition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(_pydantic_problems(exc)) from None


def semantic_problems(api: ApiDefinition) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    if api.type == "proxy":
        problems.append({"path": "$.type",
                         "message": "PROXY (sync) APIs are not supported by evgate yet: only MESSAGE APIs run"})
    if not api.listeners:
        problems.append({"path": "$.listeners", "message": "at least one listener is required"})
    seen_paths: dict[str, str] = {}
    for li, listener in enumerate(api.listeners):
        where = f"$.listeners[{li}]"
        if listener.type == "http" and not listener.paths:
            problems.append({"path": f"{where}.paths",
                             "message": "an http listener needs at least one path"})
        for pi, lpath in enumerate(listener.paths):
            key = f"{lpath.host or ''}{lpath.path}"
            if key in seen_paths:
                problems.append({"path": f"{where}.paths[{pi}].path",
                                 "message": f"duplicate listener path {lpath.path!r} "
                                            f"(also at {seen_paths[key]})"})
            seen_paths[key] = f"{where}.paths[{pi}].path"
        if listener.cors is not None:
            problems += cors_problems(listener.cors, f"{where}.cors")
        if not listener.entrypoints:
            problems.append({"path": f"{where}.entrypoints",
                             "message": "at least one entrypoint is required"})
        for ei, entrypoint in enumerate(listener.entrypoints):
            epath = f"{where}.entrypoints[{ei}]"
            problems += _connector_problems("entrypoints", entrypoint.type,
                                            entrypoint.configuration, epath, entrypoint)
    if not api.endpointGroups:
        problems.append({"path": "$.endpointGroups",
                         "message": "at least one endpoint group is required"})
    for gi, group in enumerate(api.endpointGroups):
        gpath = f"$.endpointGroups[{gi}]"
        if not plugins.is_known("endpoints", group.type):
            problems.append({"path": f"{gpath}.type", "message": _unknown("endpoint", group.type)})
        if not group.endpoints:
            problems.append({"path": f"{gpath}.endpoints",
                             "message": "an endpoint group needs at least one endpoint"})
        for ni, endpoint in enumerate(group.endpoints):
            npath = f"{gpath}.endpoints[{ni}]"
            if endpoint.type != group.type and not _same_connector("endpoints", endpoint.type,
                                                                   group.type):
                problems.append({"path": f"{npath}.type",
                                 "message": f"endpoint type {endpoint.type!r} differs from its "
                                            f"group's type {group.type!r}"})
                continue
            problems += _connector_problems("endpoints", endpoint.type,
                                            effective_configuration(group, endpoint), npath,
                                            endpoint)
    for fi, flow in enumerate(api.flows):
        problems += flow_problems(flow, f"$.flows[{fi}]")
    for pi, plan in enumerate(api.plans):
        for fi, flow in enumerate(plan.flows):
            problems += flow_problems(flow, f"$.plans[{pi}].flows[{fi}]")
    return problems


def flow_problems(flow: Any, fpath: str) -> list[dict[str, str]]:
    problems = list(flow_definition_problems(flow, fpath))
    for phase in ("request", "response", "publish", "subscribe"):
        for si, step in enumerate(getattr(flow, phase)):
            problems += _connector_problems("policies", step.policy, step.configuration,
                                            f"{fpath}.{phase}[{si}]", step, type_field="policy")
    return problems


def _same_connector(kind: str, first: str, second: str) -> bool:
    """Two type names registered to one class (aliases such as kafka-advanced = kafka)."""
    return (plugins.is_known(kind, first) and plugins.is_known(kind, second)
            and plugins.load(kind, first) is plugins.load(kind, second))


def effective_configuration(group: Any, endpoint: Any) -> dict[str, Any]:
    """The configuration an endpoint runs with: the group's shared one, then its own."""
    merged: dict[str, Any] = {}
    if endpoint.inheritConfiguration or not endpoint.configuration:
        merged.update(group.sharedConfiguration)
    merged.update(endpoint.sharedConfigurationOverride)
    merged.update(endpoint.configuration)
    return merged


def _unknown(singular: str, type_: str, kind: str | None = None) -> str:
    known = ", ".join(plugins.known(kind or singular + "s")) or "none"
    return f"unknown {singular} type {type_!r} (known: {known})"


def _connector_problems(kind: str, type_: str, configuration: dict[str, Any], path: str,
                        definition: Any, type_field: str = "type") -> list[dict[str, str]]:
    singular = kind[:-1] if kind != "policies" else "policy"
    if not plugins.is_known(kind, type_):
        return [{"path": f"{path}.{type_field}", "message": _unknown(singular, type_, kind)}]
    cls = plugins.load(kind, type_)
    check = getattr(cls, "validate_configuration", None)
    if check is None:
        return []
    return [{"path": f"{path}.configuration{sub}", "message": message}
            for sub, message in check(configuration, definition)]
