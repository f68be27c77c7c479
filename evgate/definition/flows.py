"""Flow checks of a definition: selectors, step conditions and each policy's phases, by JSON
path (issue 5). They live with the definition, not with the policy chain that runs the
flows, so that validating a definition needs no engine; the chain shares the phase names.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from .. import plugins
from ..el import ExpressionError, compile_template

if TYPE_CHECKING:
    from .model import Flow

PHASES = ("request", "response", "publish", "subscribe")
MESSAGE_PHASES = frozenset({"publish", "subscribe"})
REQUEST_PHASES = frozenset({"request", "response"})
ALL_PHASES = MESSAGE_PHASES | REQUEST_PHASES
_OPERATORS = ("STARTS_WITH", "EQUALS")
_OPERATIONS = ("PUBLISH", "SUBSCRIBE")
_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT",
                 "TRACE", "OTHER")


def flow_definition_problems(flow: "Flow", fpath: str) -> Iterator[dict[str, str]]:
    """Selector and step-condition problems of one flow, with their JSON paths."""
    for index, selector in enumerate(flow.selectors):
        where = f"{fpath}.selectors[{index}]"
        if selector.type == "http":
            yield from _operator_problem(selector.pathOperator, f"{where}.pathOperator")
            for mi, method in enumerate(selector.methods or ()):
                if not isinstance(method, str) or method.upper() not in _HTTP_METHODS:
                    yield {"path": f"{where}.methods[{mi}]",
                           "message": f"must be one of {', '.join(_HTTP_METHODS)}"}
        elif selector.type == "channel":
            yield from _operator_problem(selector.channelOperator, f"{where}.channelOperator")
            for oi, operation in enumerate(selector.operations or ()):
                if not isinstance(operation, str) or operation.upper() not in _OPERATIONS:
                    yield {"path": f"{where}.operations[{oi}]",
                           "message": "must be PUBLISH or SUBSCRIBE"}
        elif selector.type == "condition":
            if not selector.condition or not selector.condition.strip():
                yield {"path": f"{where}.condition", "message": "is required"}
            else:
                yield from _expression_problem(selector.condition, f"{where}.condition")
    for phase in PHASES:
        for index, step in enumerate(getattr(flow, phase)):
            where = f"{fpath}.{phase}[{index}]"
            if plugins.is_known("policies", step.policy):
                allowed = getattr(plugins.load("policies", step.policy), "phases", ALL_PHASES)
                if phase not in allowed:
                    yield {"path": f"{where}.policy",
                           "message": f"policy {step.policy!r} cannot run in the {phase} "
                                      f"phase (it runs in: {', '.join(sorted(allowed))})"}
            if step.condition:
                yield from _expression_problem(step.condition, f"{where}.condition")
            if step.messageCondition:
                if phase not in MESSAGE_PHASES:
                    yield {"path": f"{where}.messageCondition",
                           "message": "applies only to publish and subscribe steps"}
                else:
                    yield from _expression_problem(step.messageCondition,
                                                   f"{where}.messageCondition")


def _operator_problem(operator: Any, path: str) -> Iterator[dict[str, str]]:
    if operator is not None and str(operator).upper() not in _OPERATORS:
        yield {"path": path, "message": "must be STARTS_WITH or EQUALS"}


def _expression_problem(source: str, path: str) -> Iterator[dict[str, str]]:
    try:
        compile_template(source)
    except ExpressionError as exc:
        yield {"path": path, "message": str(exc)}
