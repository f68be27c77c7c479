"""The policy interface.

A policy is built once per deployed API from its step configuration (expressions compiled
there: a bad expression fails the deploy, not a request). At run time the chain calls
`on_request` / `on_response` for request phases and `on_message` for each message of the
publish and subscribe phases.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

if TYPE_CHECKING:
    from ..gateway.context import ExecutionContext
    from ..message import Message


class Policy:
    type: ClassVar[str] = ""
    #: Phases the policy may be placed in.
    phases: ClassVar[frozenset[str]] = frozenset({"request", "response", "publish", "subscribe"})

    def __init__(self, configuration: Mapping[str, Any], step: Any = None, api: Any = None):
        self.configuration = dict(configuration)
        self.step = step
        self.api = api

    @classmethod
    def validate_configuration(cls, configuration: Mapping[str, Any],
                               definition: Any) -> Iterable[tuple[str, str]]:
        return ()

    def on_request(self, ctx: "ExecutionContext") -> None:
        """Request phase; may raise a GatewayError to answer the client."""

    def on_response(self, ctx: "ExecutionContext", response: Any) -> Any:
        return response

    def on_message(self, message: "Message", ctx: "ExecutionContext") -> "Message | None":
        """Publish/subscribe phase: return the message (maybe changed) or None to drop it."""
        return message

    def __repr__(self) -> str:
        return f"<{type(self).__name__} api={getattr(self.api, 'id', None)}>"
