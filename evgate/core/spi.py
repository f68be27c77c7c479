"""The plugin SPI: what the engine asks of entrypoints, endpoints, policies and plan handlers,
and what a plugin may ask of the engine.

These are structural protocols (PEP 544): the built-in base classes
(`evgate.entrypoints.base.Entrypoint`, `evgate.endpoints.base.Endpoint`,
`evgate.policies.base.Policy`, `evgate.security.plans.PlanHandler`) implement them, and a
plugin needs only this module, `evgate.el` and `evgate.definition` to be written: never the
gateway package (docs/architecture.md, "Layers").
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterable, Mapping, Protocol, Sequence

from .context import ApiView, ExecutionContext
from .message import Message
from .outcomes import Outcome
from .stream import GroupItem, Subscription


class Runtime(Protocol):
    """What a plugin may use of its worker's runtime (the gateway's GatewayRuntime)."""

    config: Any           # evgate.config.Config
    producers: Any        # the worker's producer pool (endpoints that produce)
    consumer_pool: Any    # the worker's shared consumers (endpoints that consume)
    repo: Any             # the repository, when the worker has one


class Pipeline(Protocol):
    """The deployed API as its entrypoints see it: the one place where messages meet the
    policies and the endpoint (evgate.gateway.pipeline)."""

    id: str
    runtime: Runtime

    def publish(self, messages: Sequence[Message], ctx: ExecutionContext) -> list[Outcome]:
        """Publish-phase policies, then the endpoint; one outcome per message *kept*."""

    def publish_one(self, message: Message, ctx: ExecutionContext) -> Outcome | None:
        """`publish` of one message: its outcome, None when a policy dropped it."""


class GroupStream(Protocol):
    """One member of a consumer group whose positions are committed explicitly (the webhook
    entrypoint: at-least-once). The endpoint hands items over on the hub; each handed-over item
    is then either committed or released exactly once, and the endpoint stops fetching while
    `max_pending` of them are neither (a slow receiver pauses the stream, memory stays bounded).
    """

    def commit(self, item: GroupItem) -> None:
        """`item` is settled (delivered, filtered or dead-lettered): its partition may be
        committed up to and including it. Ignored when the partition moved since."""

    def release(self, count: int = 1) -> None:
        """`count` handed-over items are dropped uncommitted (revoked, stopping): the next
        owner of their partition gets them again from the last committed position."""

    def close(self, timeout: float = 10.0) -> None:
        """Commit what was committed so far, leave the group. Never raises."""


class Endpoint(Protocol):
    """A backend connector (kafka, mock): shared by every request of its API on a worker."""

    type: ClassVar[str]
    supported_qos: ClassVar[frozenset[str]]

    def start(self) -> None: ...
    def stop(self) -> None: ...

    def publish(self, messages: Sequence[Message], ctx: ExecutionContext) -> list[Outcome]:
        """One `Delivered` or exception (`PublishFailed` when the backend refused) per
        message; blocks the calling greenlet, never the hub."""

    def subscribe(self, ctx: ExecutionContext, *, cursor: str | None, qos: str,
                  capacity: int, client_id: str | None = None) -> Subscription: ...

    def open_group_stream(self, ctx: ExecutionContext, group_id: str, *,
                          on_items: Callable[[list[GroupItem]], None],
                          on_revoked: Callable[[list[tuple[str, int]]], None],
                          on_error: Callable[[str], None],
                          max_pending: int) -> GroupStream:
        """Join the group `group_id`: `on_items` gets batches in partition order, resuming
        after the group's committed positions; `on_revoked` the partitions taken away (their
        uncommitted items come again to their next owner); both run on the hub."""


class Entrypoint(Protocol):
    """Translates one protocol (HTTP POST, SSE, WebSocket, ...) to messages and outcomes."""

    type: ClassVar[str]
    modes: ClassVar[frozenset[str]]
    priority: ClassVar[int]
    methods: ClassVar[frozenset[str]]
    raw_wsgi: ClassVar[bool]

    def matches(self, request: Any) -> bool: ...
    def allows_method(self, method: str) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def handle(self, ctx: ExecutionContext) -> Any: ...


class Policy(Protocol):
    """One flow step: request/response phases and per-message transforms."""

    type: ClassVar[str]

    def on_request(self, ctx: ExecutionContext) -> None: ...
    def on_response(self, ctx: ExecutionContext, response: Any) -> Any: ...
    def on_message(self, message: Message, ctx: ExecutionContext) -> Message | None: ...


class PlanHandler(Protocol):
    """A plan's security (key-less, api-key, jwt, push)."""

    def has_credentials(self, ctx: ExecutionContext) -> bool: ...
    def authenticate(self, ctx: ExecutionContext) -> None: ...


class ConfigurationCheck(Protocol):
    """`validate_configuration` of every plugin class: (sub-path, message) per problem."""

    def __call__(self, configuration: Mapping[str, Any],
                 definition: Any) -> Iterable[tuple[str, str]]: ...


__all__ = ["ApiView", "ConfigurationCheck", "Endpoint", "Entrypoint", "GroupStream", "Pipeline",
           "PlanHandler", "Policy", "Runtime"]
