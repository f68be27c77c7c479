"""Flows compiled into policy chains, one per phase, at deploy time.

A flow applies to a request when its selectors match (http path/method, channel, condition);
API flows run first, then the flows of the plan that admitted the request. Within a phase,
steps run in order; a disabled step is skipped. A message dropped by a step (None) is not
passed to the following steps; the caller acknowledges it (so consumer lag does not grow).
A failing policy is logged and contained (mitmproxy's `safecall` habit): the message it failed
on is dropped, the others flow.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence

from .. import plugins

if TYPE_CHECKING:
    from ..definition.model import Flow
    from ..gateway.context import ExecutionContext
    from ..message import Message

logger = logging.getLogger(__name__)


class CompiledFlow:
    """One flow with its steps instantiated per phase."""

    def __init__(self, flow: "Flow", api: Any):
        self.flow = flow
        self.name = flow.name or ""
        self.enabled = flow.enabled
        self.phases: dict[str, list[Any]] = {}
        for phase in ("request", "response", "publish", "subscribe"):
            steps = []
            for step in getattr(flow, phase):
                if not step.enabled:
                    continue
                cls = plugins.load("policies", step.policy)
                steps.append(cls(step.configuration, step, api))
            self.phases[phase] = steps

    def applies(self, ctx: "ExecutionContext", phase: str) -> bool:
        """Selector matching; the http/channel/condition selectors are evaluated here."""
        if not self.enabled:
            return False
        request = ctx.request
        for selector in self.flow.selectors:
            if selector.type == "http" and request is not None:
                path = selector.path or "/"
                relative = ctx.attributes.get("gravitee.attribute.request.relativePath", "/")
                if (selector.pathOperator or "STARTS_WITH").upper() == "EQUALS":
                    if relative.rstrip("/") != path.rstrip("/"):
                        return False
                elif not relative.startswith(path.rstrip("/") or "/"):
                    return False
                if selector.methods and request.method not in [m.upper() for m in selector.methods]:
                    return False
            elif selector.type == "channel":
                operations = [o.upper() for o in (selector.operations or [])]
                wanted = "PUBLISH" if phase == "publish" else "SUBSCRIBE"
                if operations and phase in ("publish", "subscribe") and wanted not in operations:
                    return False
                if selector.entrypoints and ctx.entrypoint_type not in selector.entrypoints:
                    return False
        return True


class FlowChain:
    """The compiled flows of an API (and of each plan)."""

    def __init__(self, flows: Sequence["Flow"], api: Any):
        self.flows = [CompiledFlow(flow, api) for flow in flows]

    def steps(self, ctx: "ExecutionContext", phase: str) -> list[Any]:
        return [policy for flow in self.flows if flow.applies(ctx, phase)
                for policy in flow.phases[phase]]

    def run_messages(self, messages: Sequence["Message"], ctx: "ExecutionContext",
                     phase: str) -> list["Message"]:
        steps = self.steps(ctx, phase)
        if not steps:
            return list(messages)
        kept = []
        for message in messages:
            result = run_message(steps, message, ctx)
            if result is not None:
                kept.append(result)
        return kept


def run_message(steps: Sequence[Any], message: "Message",
                ctx: "ExecutionContext") -> "Message | None":
    current: "Message | None" = message
    for policy in steps:
        try:
            current = policy.on_message(current, ctx)
        except Exception:  # noqa: BLE001 - contained: this message is dropped, others flow
            logger.exception("policy %r failed on %r (%r); message dropped", policy, message, ctx)
            return None
        if current is None:
            return None
    return current
