"""sse: Server-Sent Events (GET with `Accept: text/event-stream`).

Stream: `retry: <sse_retry_ms>` first, then per message

    id: <cursor>
    event: message
    :<header>: <value>          (headersAsComment)
    :<key>: <value>             (metadataAsComment)
    data: <line 1>
    data: <line 2>              (content split on CR, LF, CRLF; binary is decoded as UTF-8
                                 with replacement characters)

A tombstone (a record with a null value, evgate/kafka/records.py) is `event: delete` with its
id and `data: {"key": <the record key or null>}`.
`:` heartbeat comments when nothing was written for `heartbeatIntervalInMs` (5000);
`event: error` then end when Kafka is lost; `event: goaway` then end when the gateway stops.
Resume with `Last-Event-ID` (the cursor, docs/consumption.md); a malformed one is 400.
A GET without `Accept: text/event-stream` does not match this entrypoint: 406 if no other
entrypoint of the API takes it. Long streams are not bound by gunicorn's --timeout (gevent
workers use it as a heartbeat only); the greenlet never blocks the hub.

Two ways to write a stream: the fast path (evgate/entrypoints/direct_writer.py: the fan-out
writes each frame to the non-blocking socket, the greenlet only handles what would block;
HTTP/1.1, no subscribe-phase policy, EVGATE_SSE_DIRECT_WRITE) and the generator path (every
frame yielded to the WSGI server by the client's greenlet). Without subscribe-phase policies
the stream keeps no Flask request context alive (memory per idle client). Under the
gevent_pywsgi worker a fast-path stream then takes the connection over from the server after
the `retry:` line (evgate/entrypoints/detached.py): no greenlet and no server objects per
idle client.
"""
from __future__ import annotations

import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Iterator

from flask import Response, stream_with_context

from ..core.message import Message
from ..core.stream import Subscription, SubscriptionClosed
from ..definition.plugin_config import Flag, PluginConfiguration, integer
from .base import Entrypoint
from .detached import DETACHED_KEY, DetachedStream, HandOver, can_hand_over
from .direct_writer import DirectWriter, chunk
from .streaming import SubscribeView, client_socket, cut_connection, is_plain_tcp, \
    open_subscription, watch_client

if TYPE_CHECKING:
    from ..core.context import ExecutionContext

logger = logging.getLogger(__name__)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
HEARTBEAT = b":\n\n"


def _comment_value(value: Any) -> str:
    return "" if value is None else _LINE_BREAK.sub(" ", str(value))


def encode_event(message: Message, event_id: str, *, headers_as_comment: bool = False,
                 metadata_as_comment: bool = False, event: str = "message") -> bytes:
    if message.tombstone:   # a deletion (null value): its key, never an empty message
        event = "delete"
    lines = [f"id: {_comment_value(event_id)}", f"event: {event}"]
    if headers_as_comment:
        for name, values in message.headers.items():
            for value in values:
                lines.append(f":{_comment_value(name)}: {_comment_value(value)}")
    if metadata_as_comment:
        for key, value in message.metadata.items():
            lines.append(f":{_comment_value(key)}: {_comment_value(value)}")
    if message.tombstone:
        text = json.dumps({"key": message.metadata.get("key")}, default=str)
    else:
        text = message.content.decode("utf-8", errors="replace")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(text))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def encode_control(event: str, data: str) -> bytes:
    return "".join([f"event: {event}\n"] + [f"data: {line}\n" for line in
                                             _LINE_BREAK.split(data)] + ["\n"]).encode("utf-8")


HeartbeatMs = integer(100, "must be an integer >= 100 (milliseconds)")


class SseConfiguration(PluginConfiguration):
    heartbeatIntervalInMs: HeartbeatMs = None
    metadataAsComment: Flag = False
    headersAsComment: Flag = False


class SseEntrypoint(Entrypoint):
    type = "sse"
    configuration_model = SseConfiguration
    modes = frozenset({"subscribe"})
    methods = frozenset({"GET"})
    priority = 20
    supported_qos = frozenset({"none", "auto", "at-least-once"})

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        conf = self.configuration
        self.heartbeat = (conf.get("heartbeatIntervalInMs") or 5000) / 1000
        self.headers_as_comment = bool(conf.get("headersAsComment", False))
        self.metadata_as_comment = bool(conf.get("metadataAsComment", False))
        self._frame_key = ("sse", self.headers_as_comment, self.metadata_as_comment)
        self._chunk_key = ("sse-chunk", self.headers_as_comment, self.metadata_as_comment)

    def matches(self, request: Any) -> bool:
        return request.method == "GET" and "text/event-stream" in request.headers.get("Accept", "")

    def _encode(self, message: Message, event_id: str) -> bytes:
        return encode_event(message, event_id, headers_as_comment=self.headers_as_comment,
                            metadata_as_comment=self.metadata_as_comment)

    def _encode_chunk(self, message: Message, event_id: str) -> bytes:
        return chunk(self._encode(message, event_id))

    def handle(self, ctx: "ExecutionContext") -> Response:
        request = ctx.request
        last_event_id = request.headers.get("Last-Event-ID")
        subscription = open_subscription(self, ctx, last_event_id or None)
        environ = request.environ
        sock = client_socket(environ)
        subscription.on_overflow = cut_connection(sock)
        view = SubscribeView(ctx)
        config = self.api.runtime.config
        retry = config.sse_retry_ms
        writer = None
        if (config.sse_direct_write and is_plain_tcp(sock) and not view.active
                and environ.get("SERVER_PROTOCOL") == "HTTP/1.1"):
            writer = DirectWriter(subscription, sock, self._chunk_key, self._encode_chunk,
                                  self.heartbeat)
        # the connection goes to a DetachedStream once the headers are out (memory per idle
        # client: no greenlet, no server objects; evgate/entrypoints/detached.py)
        hand_over = environ if (writer is not None and config.sse_handover
                                and can_hand_over(environ, sock)) else None
        body = self._stream(subscription, sock, view, retry, writer, hand_over)
        if view.active:   # subscribe-phase policies may use the request context
            body = stream_with_context(body)
        # direct_passthrough: the server iterates our generator itself, without werkzeug's
        # ClosingIterator + iter_encoded around it (two generator levels on every idle
        # client's saved greenlet stack, and the Response kept alive for its close()).
        response = Response(body, status=200, mimetype="text/event-stream",
                            direct_passthrough=True)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Connection"] = "keep-alive"
        response.headers["X-Accel-Buffering"] = "no"
        return response

    def _stream(self, subscription: Subscription, sock: Any, view: SubscribeView,
                retry_ms: int, writer: DirectWriter | None,
                hand_over: dict[str, Any] | None = None) -> Iterator[bytes]:
        watcher = watch_client(sock, lambda: subscription.close("client-gone"))
        handed = False
        encode = self._encode
        frame_key = self._frame_key
        try:
            # Through the server: it sends the response headers with this first chunk.
            yield f"retry: {retry_ms}\n\n".encode("ascii")
            if writer is not None:
                if hand_over is not None and subscription.closed is None:
                    try:
                        stream = DetachedStream(subscription, sock, self._chunk_key,
                                                self._encode_chunk, self.heartbeat,
                                                _control_frame)
                    except OSError:   # an unusable socket: keep the greenlet
                        logger.warning("could not detach the stream of %s; served by its "
                                       "greenlet", subscription.label, exc_info=True)
                    else:
                        if watcher is not None:
                            watcher.stop()
                            watcher = None
                        hand_over[DETACHED_KEY] = stream
                        stream.start()
                        handed = True
                        raise HandOver()
                writer.run(_control_frame)
                return
            last_write = time.monotonic()
            while True:
                wait = self.heartbeat - (time.monotonic() - last_write)
                try:
                    items = subscription.get(timeout=max(wait, 0.01)) if wait > 0 else []
                except SubscriptionClosed as closed:
                    last = _control_frame(closed)
                    if last is not None:
                        yield last
                    return
                if not items:
                    if time.monotonic() - last_write >= self.heartbeat:
                        yield HEARTBEAT
                        last_write = time.monotonic()
                    continue
                frames = []
                for item in items:
                    if view.active:
                        frames.extend(encode(m, item.cursor) for m in view.messages(item.message))
                    else:
                        frames.append(item.frame(frame_key, encode))
                if frames:
                    yield b"".join(frames)
                    last_write = time.monotonic()
                for item in items:
                    subscription.delivered(item)
        finally:
            if watcher is not None:
                watcher.stop()
            if not handed:
                subscription.close("closed")


def _control_frame(closed: SubscriptionClosed) -> bytes | None:
    """The last frame of a stream that ends for `closed.kind` (None: just end)."""
    if closed.kind == "goaway":
        return encode_control("goaway", closed.detail or "the gateway is stopping")
    if closed.kind == "error":
        return encode_control("error", closed.detail or "stream error")
    return None
