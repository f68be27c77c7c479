"""The one message pipeline of a deployed API: publish (messages in, outcomes out) and
open_stream (a cursor in, a subscription out).

Entrypoints only translate their protocol to messages and outcomes to status codes or frames;
the flow policies, the endpoint calls, the stream registry, the stream metrics and the drain
goaway live here, once (docs/architecture.md, "The pipeline"). `MessagePipeline` is a mixin of
`DeployedApi`, not a wrapper object: a request pays no extra layer for it.

On SIGTERM gunicorn stops accepting and waits up to graceful_timeout for open connections:
long streams would hold it for the whole time and then be cut without a word. The worker's one
SIGTERM handler (evgate/app.py `drain_on_sigterm`) runs the runtime's drain, which closes every
registered stream with "goaway" through `close_streams` (clients reconnect elsewhere and
resume by id).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence

from ..core.message import GROUP_ID_ATTRIBUTE
from ..observability.metrics import observe_stream

if TYPE_CHECKING:
    from ..core.context import ExecutionContext
    from ..core.message import Message
    from ..core.outcomes import Outcome
    from ..core.stream import Subscription
    from ..endpoints.base import Endpoint
    from ..policies.chain import FlowChain
    from ..core.spi import Runtime

logger = logging.getLogger(__name__)


class MessagePipeline:
    """publish / open_stream over `self.endpoint` and the flow chains (see the module doc)."""

    endpoint: "Endpoint"
    runtime: "Runtime"
    id: str

    def _chains(self, ctx: "ExecutionContext") -> list["FlowChain"]:
        raise NotImplementedError

    # -- flow phases --------------------------------------------------------------------------
    def publish_messages(self, messages: Sequence["Message"],
                         ctx: "ExecutionContext") -> list["Message"]:
        """Run the publish phase; returns the messages to send on (dropped ones removed)."""
        kept = list(messages)
        for chain in self._chains(ctx):
            kept = chain.run_messages(kept, ctx, "publish")
        return kept

    def has_message_steps(self, ctx: "ExecutionContext", phase: str) -> bool:
        """True when a `phase` ("publish"/"subscribe") step applies to this context: without
        one, messages pass unchanged (batch ingestion then skips building Messages)."""
        chains = self._chains(ctx)
        return bool(chains) and any(chain.steps(ctx, phase) for chain in chains)

    def subscribe_messages(self, messages: Sequence["Message"],
                           ctx: "ExecutionContext") -> list["Message"]:
        kept = list(messages)
        for chain in self._chains(ctx):
            kept = chain.run_messages(kept, ctx, "subscribe")
        return kept

    # -- publish ------------------------------------------------------------------------------
    def publish_one(self, message: "Message", ctx: "ExecutionContext") -> "Outcome | None":
        """The publish phase, then the endpoint: the message's outcome (a `Delivered` or an
        exception, `PublishFailed` when the backend refused), None when a policy dropped it."""
        kept = self.publish_messages([message], ctx)
        if not kept:
            return None
        return self.endpoint.publish(kept, ctx)[0]

    def publish(self, messages: Sequence["Message"],
                ctx: "ExecutionContext") -> list["Outcome | None"]:
        """`publish_one` of each message, sent together: one outcome per message, in order,
        None for those a publish-phase policy dropped."""
        kept_ids = {id(m) for m in self.publish_messages(messages, ctx)}
        to_send = [m for m in messages if id(m) in kept_ids]
        sent = iter(self.endpoint.publish(to_send, ctx) if to_send else ())
        return [next(sent) if id(m) in kept_ids else None for m in messages]

    def publish_contents(self, contents: Sequence[bytes], ctx: "ExecutionContext", *,
                         key: str | None, headers: Sequence[tuple[str, str]]
                         ) -> "list[Outcome] | None":
        """The payloads as they are, without a Message each, when no publish-phase step
        applies and the endpoint offers the shortcut (batch ingestion, bench/ingest.py);
        None when the caller must build Messages and `publish` them."""
        shortcut = getattr(self.endpoint, "publish_contents", None)
        if shortcut is None or self.has_message_steps(ctx, "publish"):
            return None
        return shortcut(contents, ctx, key=key, headers=headers) if contents else []

    # -- subscribe ----------------------------------------------------------------------------
    def open_stream(self, entrypoint: Any, ctx: "ExecutionContext", cursor: str | None, *,
                    client_id: str | None = None) -> "Subscription":
        """A subscription of one client from `cursor` (None: the live tail) with a bounded
        buffer, registered with the runtime so that drain and SIGTERM can say goaway, and
        observed by the stream metrics. `client_id` (X-Gravitee-Client-Identifier) puts the
        clients that share it in one consumer group. The caller must close() it."""
        runtime = self.runtime
        if client_id is not None:
            ctx.attributes.setdefault(GROUP_ID_ATTRIBUTE, f"evgate-{self.id}-{client_id}")
        subscription = self.endpoint.subscribe(
            ctx, cursor=cursor, qos=entrypoint.qos, capacity=runtime.config.stream_client_buffer,
            client_id=client_id)
        runtime.streams.add(subscription)
        subscription.add_close_callback(runtime.streams.discard)
        observe_stream(subscription, self.id, entrypoint.type)  # metrics: gauge, records out
        return subscription


def close_streams(runtime: Any, kind: str, detail: str) -> None:
    """Close every open client stream of the worker with `kind` ("goaway") and `detail`."""
    streams = list(getattr(runtime, "streams", ()))
    if streams:
        logger.info("closing %d client streams (%s)", len(streams), kind)
    for subscription in streams:
        subscription.close(kind, detail)
