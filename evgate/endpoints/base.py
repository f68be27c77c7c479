"""The endpoint interface (the backend connector an API publishes to or subscribes from).

Lifecycle (nameko's Extension habit): `start()` when the API is deployed on a worker,
`stop()` when it is undeployed or the worker drains. Both default to no-ops, and `stop` must
not raise. An endpoint is shared by every request of its API on one worker.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Mapping, Sequence

from ..definition import plugin_config

if TYPE_CHECKING:
    from ..core.context import ExecutionContext
    from ..core.spi import Runtime
    from ..core.message import Message
    from ..core.spi import GroupStream
    from ..core.stream import GroupItem, Subscription


class Endpoint:
    type: ClassVar[str] = ""
    #: QoS levels the endpoint can honour when subscribing (entrypoint qos must be one of them).
    supported_qos: ClassVar[frozenset[str]] = frozenset({"none", "auto"})
    #: the pydantic model of `configuration` (validation, secrets, JSON schema)
    configuration_model: ClassVar[type | None] = None

    def __init__(self, name: str, configuration: Mapping[str, Any], runtime: "Runtime",
                 api_id: str):
        self.name = name
        self.configuration = dict(configuration)
        self.runtime = runtime
        self.api_id = api_id

    @classmethod
    def validate_configuration(cls, configuration: Mapping[str, Any],
                               definition: Any) -> Iterable[tuple[str, str]]:
        """(sub-path, message) pairs for each problem; the sub-path starts with '.' or '['.
        The default checks `configuration_model`; override to add checks that need the
        definition (call super)."""
        return plugin_config.problems(cls.configuration_model, configuration)

    @property
    def can_publish(self) -> bool:
        return False

    @property
    def can_subscribe(self) -> bool:
        return False

    @property
    def can_group_stream(self) -> bool:
        """Whether `open_group_stream` works (the webhook entrypoint needs it)."""
        return False

    def start(self) -> None:
        """Called once when the API is deployed on this worker."""

    def stop(self) -> None:
        """Called when the API is undeployed or the worker stops; must not raise."""

    def publish(self, messages: Sequence["Message"], ctx: "ExecutionContext") -> list[Any]:
        """Send messages; return one result per message (a result object or an Exception).

        Blocks the calling greenlet (never the hub) until every message is acknowledged or
        failed."""
        raise NotImplementedError(f"{self.type} endpoint cannot publish")

    def subscribe(self, ctx: "ExecutionContext", *, cursor: str | None, qos: str,
                  capacity: int, client_id: str | None = None) -> "Subscription":
        """Open a stream of messages for one client (sse, websocket, http-get).

        `cursor` is the client's resume point (Last-Event-ID / ?cursor=), None to start at the
        live tail; a malformed one raises BadRequestError. `client_id` (the
        X-Gravitee-Client-Identifier header) puts clients sharing it in one consumer group.
        Blocks the calling greenlet until the stream is ready; BackendUnavailableError (503)
        when the backend cannot be reached. The caller must `close()` the subscription."""
        raise NotImplementedError(f"{self.type} endpoint cannot subscribe")

    def open_group_stream(self, ctx: "ExecutionContext", group_id: str, *,
                          on_items: Callable[[list["GroupItem"]], None],
                          on_revoked: Callable[[list[tuple[str, int]]], None],
                          on_error: Callable[[str], None],
                          max_pending: int) -> "GroupStream":
        """Join the consumer group `group_id` with explicit commits (webhook deliveries:
        evgate/core/spi.py `GroupStream`). Call `close()` on the result."""
        raise NotImplementedError(f"{self.type} endpoint has no group stream")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} api={self.api_id}>"
