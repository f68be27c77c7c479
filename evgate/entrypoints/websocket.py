"""websocket: publish and subscribe over one WebSocket (GET with `Upgrade: websocket`).

Configuration: `subscriber: {enabled}` (default true): each message is one frame, text when
the content is UTF-8, binary otherwise; `publisher: {enabled}` (default true): each inbound
frame is one message, produced through the API's publish flow and endpoint and acknowledged
by the broker before the next frame is read; a produce failure closes with 1011.
Close codes: 1000 when the endpoint ends the stream, 1001 when the gateway shuts down, 1011 on
an error (Kafka lost, produce failed). A client resumes a subscription with the
`Last-Event-ID` header or `?cursor=` (the id of the last message it got, docs/consumption.md).
Frames carry no id unless the upgrade URL has `?envelope=true`: then every frame is a JSON text
frame `{"id", "content", "headers", "metadata"}` (`ws_envelope`), and `id` is that cursor.
Without the envelope a tombstone (null value) sends nothing: there is no raw form of it.

Library: simple-websocket (flask-sock's engine, maintained; gevent-websocket is unmaintained
since 2017 and needs its own worker class). Its reader runs on `threading.Thread`, which
gunicorn's gevent workers monkey-patch into a greenlet. See docs/architecture.md.
A subscriber socket under the gevent_pywsgi worker is instead answered here (`handshake`)
and served without any greenlet after the 101 (evgate/entrypoints/ws_detached.py,
EVGATE_WS_HANDOVER; with its publisher enabled only with EVGATE_WS_HANDOVER_PUBLISHER): its
inbound data frames are published by a greenlet that lives only while they are produced
(`_publish`, as here), or dropped when the publisher is disabled.
"""
from __future__ import annotations

import base64
import json
import logging
import socket
import struct
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Optional

import gevent
from flask import Response
from gevent.lock import Semaphore
from simple_websocket import ConnectionClosed, Server

from ..core.stream import Subscription, SubscriptionClosed
from ..definition.plugin_config import Flag, PluginConfiguration, must_be
from ..errors import BadRequestError
from ..core.message import Message
from .base import Entrypoint
from .direct_writer import DirectWriter
from .detached import DETACHED_KEY, HandOver, can_hand_over
from .streaming import SubscribeView, client_socket, cut_connection, is_plain_tcp, \
    open_subscription
from .ws_detached import DetachedWebSocket, handshake

if TYPE_CHECKING:
    from ..core.context import ExecutionContext

logger = logging.getLogger(__name__)

NORMAL, GOING_AWAY, INTERNAL_ERROR = 1000, 1001, 1011


def ws_payload(message: Message, _cursor: str) -> str | bytes | None:
    """The raw frame: the payload as it is (None for a tombstone: there is nothing to send;
    clients that need deletions use the envelope)."""
    if message.tombstone:
        return None
    try:
        return message.content.decode("utf-8")
    except UnicodeDecodeError:
        return message.content


def ws_envelope(message: Message, cursor: str) -> str:
    """The `?envelope=true` text frame: `{"id", "content", "headers", "metadata"}`; `id` is
    the cursor to resume after this message (`?cursor=`); content that is not UTF-8 is base64
    with `"encoding": "base64"`; a tombstone is `"content": null, "deleted": true`."""
    envelope: dict[str, Any] = {"id": cursor}
    if message.tombstone:
        envelope["content"] = None
        envelope["deleted"] = True
    else:
        try:
            envelope["content"] = message.content.decode("utf-8")
        except UnicodeDecodeError:
            envelope["content"] = base64.b64encode(message.content).decode("ascii")
            envelope["encoding"] = "base64"
    envelope["headers"] = message.headers
    envelope["metadata"] = message.metadata
    return json.dumps(envelope, separators=(",", ":"), default=str)


def frame(payload: str | bytes | None) -> bytes:
    """A whole unmasked server frame (RFC 6455 5.2): text for str, binary for bytes; b"" for
    None (nothing to send)."""
    if payload is None:
        return b""
    if isinstance(payload, str):
        data, opcode = payload.encode("utf-8"), 0x81      # FIN + text
    else:
        data, opcode = payload, 0x82                       # FIN + binary
    size = len(data)
    if size < 126:
        return struct.pack("!BB", opcode, size) + data
    if size < 65536:
        return struct.pack("!BBH", opcode, 126, size) + data
    return struct.pack("!BBQ", opcode, 127, size) + data


def _has_close_frame(data: bytes) -> bool:
    """Whether these unmasked server frames (what simple-websocket writes) include a Close."""
    at, size = 0, len(data)
    while at + 2 <= size:
        if data[at] & 0x0F == 0x8:
            return True
        length, at = data[at + 1] & 0x7F, at + 2
        if length == 126:
            length, at = int.from_bytes(data[at:at + 2], "big"), at + 2
        elif length == 127:
            length, at = int.from_bytes(data[at:at + 8], "big"), at + 8
        at += length
    return False


def _raw_frame(message: Message, cursor: str) -> bytes:
    return frame(ws_payload(message, cursor))


def _envelope_frame(message: Message, cursor: str) -> bytes:
    return frame(ws_envelope(message, cursor))


def envelope_requested(request: Any) -> bool:
    value = request.args.get("envelope")
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered not in ("true", "false", "1", "0", ""):
        raise BadRequestError("envelope must be true or false", key="INVALID_ENVELOPE")
    return lowered in ("true", "1", "")


class _SendAll:
    """simple-websocket writes frames with sock.send(), which may write part of a large frame;
    this proxy makes every send a sendall(), one at a time: the handler's greenlet (messages,
    close) and simple-websocket's reader (pong and close replies) both write, and two
    greenlets waiting to write on one gevent socket raise ConcurrentObjectUseError (and kill
    the reader) as soon as a slow client fills the socket buffer."""

    def __init__(self, sock: Any):
        self._sock = sock
        self._writing = Semaphore()
        #: the fan-out's direct writer, if any: a frame it left half-written goes out first
        self.writer: DirectWriter | None = None

    def send(self, data: bytes) -> int:
        with self._writing:
            writer = self.writer
            if writer is not None:
                writer.flush_pending()
                if _has_close_frame(data):
                    # RFC 6455 5.5.1: no data frame after a Close; the fan-out stops writing
                    writer.subscription.close("client-gone")
            self._sock.sendall(data)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _HandledResponse(Response):
    """The connection was taken over by the WebSocket: tell the server not to answer it
    (flask-sock's way: StopIteration for gunicorn's `gevent` worker, an empty body for
    gevent's pywsgi, which then finds the socket shut down and ends the connection)."""

    mode = "gevent"

    def __call__(self, environ: Any, start_response: Any) -> Any:
        if self.mode == "gunicorn":
            raise StopIteration()
        return []


class _TakenOver(Response):
    """A WebSocket served by evgate/entrypoints/ws_detached.py: the body (`_take_over`) is
    the whole answer; no status line or header from the server."""

    def __init__(self, body: Iterator[bytes]):
        super().__init__()
        self._body = body

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self._body


class WebSocketSide(PluginConfiguration):
    enabled: Flag = True


#: `{"enabled": true|false}`, the publisher or subscriber side of the socket
Side = Annotated[Optional[WebSocketSide],
                 must_be(dict, "must be an object {\"enabled\": true|false}")]


class WebSocketConfiguration(PluginConfiguration):
    publisher: Side = None
    subscriber: Side = None


class WebSocketEntrypoint(Entrypoint):
    type = "websocket"
    configuration_model = WebSocketConfiguration
    modes = frozenset({"publish", "subscribe"})
    methods = frozenset({"GET"})
    priority = 10
    supported_qos = frozenset({"none", "auto", "at-least-once"})

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        conf = self.configuration
        self.publisher = (conf.get("publisher") or {}).get("enabled", True) is not False
        self.subscriber = (conf.get("subscriber") or {}).get("enabled", True) is not False

    def matches(self, request: Any) -> bool:
        return (request.method == "GET"
                and request.headers.get("Upgrade", "").lower() == "websocket")

    def handle(self, ctx: "ExecutionContext") -> Response:
        request = ctx.request
        environ = request.environ
        subscription = None
        envelope = envelope_requested(request)
        if self._hands_over(ctx):
            head = handshake(request)
            cursor = request.headers.get("Last-Event-ID") or request.args.get("cursor") or None
            subscription = open_subscription(self, ctx, cursor)
            environ["evgate.close_connection"] = True   # observability/access.py
            if self.publisher:
                _keep_request_only(ctx)
            return _TakenOver(self._take_over(ctx, environ, subscription, head, envelope))
        if self.subscriber:
            cursor = request.headers.get("Last-Event-ID") or request.args.get("cursor") or None
            subscription = open_subscription(self, ctx, cursor)
        try:
            ws = Server(environ, ping_interval=None,
                        max_message_size=self.api.runtime.config.max_message_size)
        except Exception as exc:  # noqa: BLE001 - handshake refused by simple-websocket
            if subscription is not None:
                subscription.close("closed")
            raise BadRequestError(f"invalid WebSocket handshake: {exc}",
                                  key="INVALID_WEBSOCKET_HANDSHAKE") from None
        ws.sock = _SendAll(ws.sock)
        environ["evgate.close_connection"] = True   # observability/access.py: no keep-alive
        response = _HandledResponse()
        response.mode = "gunicorn" if ws.mode == "gunicorn" else "gevent"
        try:
            self._session(ctx, ws, subscription, envelope)
        finally:
            if subscription is not None:
                subscription.close("closed")
            if ws.connected:
                try:
                    ws.close(NORMAL)
                except (ConnectionClosed, OSError):
                    pass
            ws.thread.join(timeout=1)   # the client's answer to our close frame
            original = environ.get("gunicorn.sock") or environ.get("gunicorn.socket")
            if original is not None:
                try:   # EOF for the reader and for the server: no keep-alive after a WebSocket
                    original.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            # The reader must be done before the server gets the connection back: under the
            # `gevent` worker it reads the server's own socket object (ConcurrentObjectUseError).
            ws.thread.join(timeout=5)
        return response

    def _hands_over(self, ctx: "ExecutionContext") -> bool:
        """Served without a greenlet after the upgrade (evgate/entrypoints/ws_detached.py):
        a subscriber socket (its publisher too with EVGATE_WS_HANDOVER_PUBLISHER: a greenlet
        only while inbound frames are produced; publisher-only sockets have nothing to
        fan out), on plain TCP under the gevent_pywsgi worker, without subscribe-phase
        policies."""
        config = self.api.runtime.config
        if not self.subscriber or (self.publisher and not config.ws_handover_publisher):
            return False
        environ = ctx.request.environ
        return (config.ws_handover and config.ws_direct_write
                and can_hand_over(environ, client_socket(environ))
                and not SubscribeView(ctx).active)

    def _take_over(self, ctx: "ExecutionContext", environ: dict[str, Any],
                   subscription: Subscription, head: bytes, envelope: bool) -> Iterator[bytes]:
        """The response body: run by the server after the application returned, so nothing
        can answer this request once the 101 is out; ends with HandOver (never yields)."""
        key, encode = (("ws-envelope-frame",), _envelope_frame) if envelope else (
            ("ws-frame",), _raw_frame)
        try:
            publish = None
            if self.publisher:
                publish = lambda content: self._publish(ctx, content)   # noqa: E731
            stream = DetachedWebSocket(subscription, client_socket(environ), key, encode,
                                       self.api.runtime.config.max_message_size, publish)
        except OSError:   # the socket is unusable: the client is gone
            subscription.close("client-gone")
            return
        environ[DETACHED_KEY] = stream
        stream.open(head)
        raise HandOver()
        yield b""  # noqa: unreachable - makes this a generator, run when the server iterates

    def _session(self, ctx: "ExecutionContext", ws: Server,
                 subscription: Subscription | None, envelope: bool = False) -> None:
        state = {"close": None}
        reader = gevent.spawn(self._read_frames, ctx, ws, subscription, state)
        try:
            if subscription is None:
                reader.join()
            else:
                subscription.on_overflow = cut_connection(ws.sock)
                self._send_loop(ctx, ws, subscription, envelope)
        finally:
            reader.kill(block=False)
        code, reason = state["close"] or (None, None)
        if code is not None and ws.connected:
            try:
                ws.close(code, reason)
            except (ConnectionClosed, OSError):
                pass

    def _send_loop(self, ctx: "ExecutionContext", ws: Server, subscription: Subscription,
                   envelope: bool = False) -> None:
        view = SubscribeView(ctx)
        encode = ws_envelope if envelope else ws_payload
        frame_key = ("ws-envelope",) if envelope else ("ws",)
        if (self.api.runtime.config.ws_direct_write and not view.active
                and isinstance(ws.sock, _SendAll) and is_plain_tcp(ws.sock._sock)
                and not ctx.request.headers.get("Sec-WebSocket-Extensions")):
            self._direct_loop(ws, subscription, envelope)
            return
        while True:
            try:
                items = subscription.get(timeout=None)
            except SubscriptionClosed as closed:
                _close_for(ws, closed)
                return
            try:
                for item in items:
                    if view.active:
                        frames = [encode(message, item.cursor)
                                  for message in view.messages(item.message)]
                    else:
                        frames = [item.frame(frame_key, encode)]
                    for frame in frames:
                        if frame is not None:
                            ws.send(frame)
                    subscription.delivered(item)
            except (ConnectionClosed, OSError):
                return

    def _direct_loop(self, ws: Server, subscription: Subscription, envelope: bool) -> None:
        """The fast path (evgate/entrypoints/direct_writer.py): the fan-out writes each frame,
        encoded once per message for every client, straight to the socket. Not with a
        negotiated extension (permessage-deflate compresses per connection) nor when a
        subscribe-phase policy needs a per-client copy."""
        proxy = ws.sock
        key, encode = (("ws-envelope-frame",), _envelope_frame) if envelope else (
            ("ws-frame",), _raw_frame)
        writer = DirectWriter(subscription, proxy._sock, key, encode, None,
                              lock=proxy._writing)
        proxy.writer = writer

        try:
            writer.run(lambda closed: _close_for(ws, closed))
        finally:
            with proxy._writing:
                proxy.writer = None

    def _read_frames(self, ctx: "ExecutionContext", ws: Server,
                     subscription: Subscription | None, state: dict) -> None:
        """Inbound frames (also how a client that left is noticed at once)."""
        try:
            while True:
                data = ws.receive()
                if data is None:
                    continue
                if not self.publisher:
                    continue
                content = data.encode("utf-8") if isinstance(data, str) else bytes(data)
                if not self._publish(ctx, content):
                    state["close"] = (INTERNAL_ERROR, "the message could not be produced")
                    break
        except ConnectionClosed:
            pass
        finally:
            if subscription is not None:
                subscription.close("client-gone" if state["close"] is None else "closed")

    def _publish(self, ctx: "ExecutionContext", content: bytes) -> bool:
        message = Message(content=content)
        try:
            outcome = self.api.publish_one(message, ctx)
            if outcome is None:   # dropped by a publish-phase policy
                return True
        except Exception:  # noqa: BLE001 - a failing publish closes this client only
            logger.exception("websocket publish failed (api %s, tx %s)", self.api.id,
                             ctx.transaction_id)
            return False
        if isinstance(outcome, Exception):
            logger.warning("websocket publish failed (api %s, tx %s): %s", self.api.id,
                           ctx.transaction_id, outcome)
            return False
        return True


def _keep_request_only(ctx: "ExecutionContext") -> None:
    """A handed-over publisher socket keeps its context for the publish flow, which runs after
    the request's (Flask) context is gone: give it a copy of the upgrade request over the
    environ's plain values (method, path, query, headers, client address: what plans and
    policies read), without the server's objects (its input stream, read buffer and socket),
    which would otherwise live as long as the socket."""
    request = ctx.request
    request = getattr(request, "_get_current_object", lambda: request)()   # Flask's proxy
    environ = {key: value for key, value in request.environ.items()
               if isinstance(value, (str, bool, int, tuple))}
    ctx.request = type(request)(environ)
    ctx._request_view = None


def _close_for(ws: Server, closed: SubscriptionClosed) -> None:
    """The Close frame that tells the client why its stream ended, for the endings that have
    one (goaway: reconnect elsewhere; error; end); the connection must still be open."""
    code = {"goaway": GOING_AWAY, "error": INTERNAL_ERROR, "end": NORMAL}.get(closed.kind)
    if code is not None and ws.connected:
        try:
            ws.close(code, (closed.detail or closed.kind)[:120])
        except (ConnectionClosed, OSError):
            pass
