"""Flows compiled into policy chains, one per phase, at deploy time.

A flow applies to a request when all its selectors match (http path/method, channel,
condition); API flows run first, then the flows of the plan that admitted the request, every
matching flow in definition order. Within a phase, steps run in order; a disabled step is
skipped, a step whose `condition` is false (evaluated once per request or subscription
context) is skipped, and a message step whose `messageCondition` is false for a message lets
that message pass unchanged. A condition that fails to evaluate counts as false and is logged
once per burst (a burst logger per flow/step, see `BurstLog`).

A message dropped by a step (None) is not passed to the following steps; the caller
acknowledges it (so consumer lag does not grow). A failing policy is logged with the API id
and contained (mitmproxy's `safecall` habit): the message it failed on is dropped, the others
flow.

Path matching (http selector `path`, channel selector `channel`) is done on the request path
relative to the listener path (`gravitee.attribute.request.relativePath`); `:name` segments
match one path segment and are exposed as `#request.pathParams['name']`. STARTS_WITH matches
on segment boundaries (`/orders` matches `/orders` and `/orders/1`, not `/ordersx`). Without
an HTTP request (webhook deliveries) the path is the subscription's `configuration.channel`,
else `/`, and no method matches a non-empty `methods` list.
"""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Sequence

from .. import plugins
from ..el import ExpressionError, Template, compile_template
from ..errors import DefinitionError
from ..definition.flows import MESSAGE_PHASES, PHASES
from .base import BurstLog, as_boolean

if TYPE_CHECKING:
    from ..definition.model import Flow, Selector, Step
    from ..core.context import ExecutionContext
    from ..core.message import Message

logger = logging.getLogger(__name__)

RELATIVE_PATH = "gravitee.attribute.request.relativePath"
_PARAM = re.compile(r"^:([A-Za-z0-9_\-]+)$")


def evaluate_condition(template: Template, variables: dict[str, Any], what: str,
                       burst: BurstLog, api_id: Any, cache: dict | None = None) -> bool:
    """A condition's value; an evaluation error is logged once per burst and is false."""
    try:
        return as_boolean(template.evaluate(variables, cache=cache), what)
    except ExpressionError as exc:
        burst(logging.WARNING, "API %s: %s %r failed (%s); treated as false", api_id, what,
              template.source, exc)
        return False


# -- selectors ----------------------------------------------------------------------------------

class PathPattern:
    """A selector path (`/orders/:id`) matched on the relative request path."""

    def __init__(self, path: str | None, operator: str | None):
        path = path or "/"
        if not path.startswith("/"):
            path = "/" + path
        self.path = path
        self.operator = (operator or "STARTS_WITH").upper()
        segments = [s for s in path.split("/") if s]
        self.names: list[str] = []
        parts = []
        for segment in segments:
            match = _PARAM.match(segment)
            if match:
                self.names.append(match.group(1))
                parts.append("/([^/]+)")
            else:
                parts.append("/" + re.escape(segment))
        body = "".join(parts)
        tail = "/?$" if self.operator == "EQUALS" else "(?:/|$)"
        self.regex = re.compile("^" + body + tail) if body else (
            re.compile("^/?$") if self.operator == "EQUALS" else None)

    def match(self, relative: str) -> dict[str, str] | None:
        """The path parameters when the path matches, else None."""
        if self.regex is None:          # "/" with STARTS_WITH: everything
            return {}
        found = self.regex.match(relative or "/")
        if found is None:
            return None
        return dict(zip(self.names, found.groups()))


def _relative_path(ctx: "ExecutionContext") -> str:
    relative = ctx.attributes.get(RELATIVE_PATH)
    if relative is not None:
        return relative
    subscription = ctx.subscription or {}
    configuration = subscription.get("configuration") or {}
    channel = configuration.get("channel") if isinstance(configuration, dict) else None
    return channel if isinstance(channel, str) and channel else "/"


class HttpSelector:
    def __init__(self, selector: "Selector"):
        self.pattern = PathPattern(selector.path, selector.pathOperator)
        self.methods = frozenset(m.upper() for m in selector.methods or ())

    def matches(self, ctx: "ExecutionContext", phase: str) -> bool:
        if self.methods:
            if ctx.request is None or ctx.request.method.upper() not in self.methods:
                return False
        params = self.pattern.match(_relative_path(ctx))
        if params is None:
            return False
        if params and ctx.request_view is not None:
            ctx.request_view.path_params.update(params)
        return True


class ChannelSelector:
    def __init__(self, selector: "Selector"):
        self.pattern = PathPattern(selector.channel, selector.channelOperator)
        self.operations = frozenset(o.upper() for o in selector.operations or ())
        self.entrypoints = frozenset(selector.entrypoints or ())

    def matches(self, ctx: "ExecutionContext", phase: str) -> bool:
        if self.entrypoints and ctx.entrypoint_type not in self.entrypoints:
            return False
        if self.operations:
            if phase in MESSAGE_PHASES:
                if phase.upper() not in self.operations:
                    return False
            elif not self.operations & _entrypoint_operations(ctx.entrypoint_type):
                return False
        return self.pattern.match(_relative_path(ctx)) is not None


def _entrypoint_operations(entrypoint_type: str | None) -> frozenset[str]:
    """PUBLISH/SUBSCRIBE as the entrypoint type offers them (its `modes`)."""
    if not entrypoint_type or not plugins.is_known("entrypoints", entrypoint_type):
        return frozenset()
    modes = getattr(plugins.load("entrypoints", entrypoint_type), "modes", frozenset())
    return frozenset(m.upper() for m in modes)


class ConditionSelector:
    def __init__(self, selector: "Selector", api: Any):
        self.template = compile_template(selector.condition or "{true}")
        self.api_id = getattr(api, "id", None)
        self.burst = BurstLog(logger)

    def matches(self, ctx: "ExecutionContext", phase: str) -> bool:
        return evaluate_condition(self.template, ctx.context_variables(), "flow condition",
                                  self.burst, self.api_id)


def _selector(selector: "Selector", api: Any) -> Any:
    if selector.type == "http":
        return HttpSelector(selector)
    if selector.type == "channel":
        return ChannelSelector(selector)
    return ConditionSelector(selector, api)


# -- steps and flows ----------------------------------------------------------------------------

class CompiledStep:
    """A policy instance with its compiled `condition` and `messageCondition`."""

    __slots__ = ("policy", "phase", "name", "condition", "message_condition", "api_id",
                 "burst")

    def __init__(self, step: "Step", phase: str, api: Any, place: str = ""):
        cls = plugins.load("policies", step.policy)
        self.policy = cls(step.configuration, step, api)
        try:
            self.policy.place = place
        except AttributeError:   # a plugin policy with __slots__ and no `place`
            pass
        self.phase = phase
        self.name = step.name or step.policy
        self.condition = compile_template(step.condition) if step.condition else None
        self.message_condition = (compile_template(step.messageCondition)
                                  if step.messageCondition and phase in MESSAGE_PHASES
                                  else None)
        self.api_id = getattr(api, "id", None)
        self.burst = BurstLog(logger)

    def applies(self, ctx: "ExecutionContext") -> bool:
        if self.condition is None:
            return True
        return evaluate_condition(self.condition, ctx.context_variables(),
                                  f"condition of step {self.name!r}", self.burst, self.api_id)

    def applies_to(self, message: "Message", ctx: "ExecutionContext") -> bool:
        if self.message_condition is None:
            return True
        scope = ctx.message_scope(message)
        return evaluate_condition(self.message_condition, scope.variables,
                                  f"messageCondition of step {self.name!r}", self.burst,
                                  self.api_id, scope.cache)

    def __repr__(self) -> str:
        return f"<CompiledStep {self.name!r} {self.phase} {self.policy!r}>"


class CompiledFlow:
    """One flow with its selectors compiled and its steps instantiated per phase."""

    def __init__(self, flow: "Flow", api: Any, place: str = ""):
        self.flow = flow
        self.name = flow.name or ""
        self.enabled = flow.enabled
        self.selectors = [_selector(s, api) for s in flow.selectors]
        self.phases: dict[str, list[CompiledStep]] = {
            phase: [CompiledStep(step, phase, api, f"{place}.{phase}[{index}]")
                    for index, step in enumerate(getattr(flow, phase)) if step.enabled]
            for phase in PHASES}

    def applies(self, ctx: "ExecutionContext", phase: str) -> bool:
        if not self.enabled:
            return False
        return all(selector.matches(ctx, phase) for selector in self.selectors)


class FlowChain:
    """The compiled flows of an API (or of one plan)."""

    def __init__(self, flows: Sequence["Flow"], api: Any, path: str = "$.flows"):
        self.api_id = getattr(api, "id", None)
        self.flows = []
        for index, flow in enumerate(flows):
            try:
                self.flows.append(CompiledFlow(flow, api, f"{path}[{index}]"))
            except ExpressionError as exc:
                # Definitions are validated before they are stored; this guards rows stored
                # by older versions, so that the worker skips the API instead of crashing.
                raise DefinitionError([{"path": f"{path}[{index}]", "message": str(exc)}]) \
                    from None

    def steps(self, ctx: "ExecutionContext", phase: str) -> list[CompiledStep]:
        """The steps of `phase` for this context: selected once per context and phase."""
        key = (self, phase)
        selected = ctx.scratch.get(key)
        if selected is None:
            selected = ctx.scratch[key] = [
                step for flow in self.flows if flow.phases[phase] and flow.applies(ctx, phase)
                for step in flow.phases[phase] if step.applies(ctx)]
        return selected

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

    def run_request(self, ctx: "ExecutionContext") -> None:
        for step in self.steps(ctx, "request"):
            step.policy.on_request(ctx)

    def run_response(self, ctx: "ExecutionContext", response: Any) -> Any:
        for step in self.steps(ctx, "response"):
            response = step.policy.on_response(ctx, response)
        return response


def run_message(steps: Sequence[CompiledStep], message: "Message",
                ctx: "ExecutionContext") -> "Message | None":
    current: "Message | None" = message
    for step in steps:
        if step.message_condition is not None and not step.applies_to(current, ctx):
            continue
        try:
            current = step.policy.on_message(current, ctx)
        except Exception:  # noqa: BLE001 - contained: this message is dropped, others flow
            step.policy.errors += 1
            step.burst(logging.ERROR, "API %s: policy %s (step %r) failed on %r; message "
                       "dropped", step.api_id, step.policy.type, step.name, message,
                       exc_info=True)
            return None
        if current is None:
            return None
    return current


# -- definition checks (called by evgate.definition.validate.flow_problems) --------------------
