"""Subscriber-only WebSocket connections served after the WSGI server let go of them.

Why: a WebSocket subscriber on the greenlet path (evgate/entrypoints/websocket.py) keeps three
greenlets (simple-websocket's reader, the session's, the server's handler) with their stacks,
pywsgi's handler and read buffer, the environ and simple-websocket's wsproto/h11 state: ~64 KiB
of worker memory per idle client; and simple-websocket's handshake (h11 + wsproto) was half
of an upgrade's CPU (docs/benchmarks.md, Fan-out).

Here (gevent_pywsgi worker, plain TCP, publisher disabled, no subscribe-phase policy,
EVGATE_WS_HANDOVER): the entrypoint checks the upgrade itself (`handshake`: RFC 6455 4.2.1;
no extension or subprotocol is negotiated, so frames are the plain ones encoded once per
message for every client), then, from the response body as the server iterates it, takes
the connection's fd over (as the SSE hand-over, evgate/entrypoints/detached.py, whose
`DetachedStream` this extends), writes the 101 and raises `HandOver`: the server ends the
request without touching the socket; no greenlet and no server object is left.

After that everything runs on the hub: the fan-out writes frames straight to the socket; a
libev read watcher reads what the client sends and parses it with wsproto's frame layer
(`FrameProtocol`, created only once the client sends something: most subscribers never do):
a Ping is answered with a Pong (after a frame left half-written, never inside it); a Close is
answered with a Close echoing its code, then the fd is closed; data frames are read and
dropped (a subscriber-only socket, as on the greenlet path), a message over
EVGATE_MAX_MESSAGE_SIZE is answered with Close 1009, a malformed frame (unmasked, reserved
bits, bad UTF-8, ...) with the code wsproto names (1002, 1007). When the stream ends on the
gateway's side (goaway on SIGTERM: 1001; Kafka lost: 1011; the endpoint's end: 1000) the
Close goes out after everything buffered, then the client's Close is awaited for
CLOSE_WAIT seconds before the fd is closed (RFC 6455 7.1.1: closing at once could reset the
connection before the client read our Close). A client that leaves, or is cut as too slow,
is closed at once.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import struct
from collections import deque
from typing import Any, Callable

import gevent
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

from ..core.message import Message
from ..core.stream import Subscription, SubscriptionClosed
from ..errors import BadRequestError
from .detached import FINAL_WRITE_TIMEOUT, DetachedStream

logger = logging.getLogger(__name__)

NORMAL, GOING_AWAY, INTERNAL_ERROR, TOO_BIG = 1000, 1001, 1011, 1009
_CLOSE_CODES = {"goaway": GOING_AWAY, "error": INTERNAL_ERROR, "end": NORMAL}
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"   # RFC 6455 1.3

#: seconds the client has to answer our Close before its fd is closed anyway
CLOSE_WAIT = 1.0
#: bytes read per readable event
RECV_SIZE = 16 * 1024
#: reply bytes (Pongs) queued behind half-written frames before the client counts as too slow
REPLY_BACKLOG = 64 * 1024


def accept_key(key: str) -> str:
    """RFC 6455 4.2.2: base64(SHA-1(key + GUID))."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def handshake(request: Any) -> bytes:
    """The whole 101 response for a valid upgrade request (RFC 6455 4.2.1), or
    BadRequestError naming the header at fault."""
    def refuse(message: str) -> BadRequestError:
        return BadRequestError(f"invalid WebSocket handshake: {message}",
                               key="INVALID_WEBSOCKET_HANDSHAKE")

    if request.environ.get("SERVER_PROTOCOL") != "HTTP/1.1":
        raise refuse("the upgrade request must be HTTP/1.1")
    tokens = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    if "upgrade" not in tokens:
        raise refuse("header Connection must contain 'Upgrade'")
    version = request.headers.get("Sec-WebSocket-Version", "").strip()
    if version != "13":
        raise refuse("header Sec-WebSocket-Version must be 13")
    key = request.headers.get("Sec-WebSocket-Key", "").strip()
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise refuse("header Sec-WebSocket-Key must be 16 bytes in base64")
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
            % accept_key(key).encode("ascii"))


def close_frame(code: int, reason: str = "") -> bytes:
    """An unmasked Close frame (RFC 6455 5.5.1); the reason cut to fit a control frame."""
    payload = struct.pack("!H", code) + reason.encode("utf-8")[:123]
    while True:
        try:
            payload[2:].decode("utf-8")
            break
        except UnicodeDecodeError:   # cut inside a character
            payload = payload[:-1]
    return struct.pack("!BB", 0x88, len(payload)) + payload


def _no_control(_closed: SubscriptionClosed) -> None:
    return None


class DetachedWebSocket(DetachedStream):
    """One WebSocket without its server greenlet (the module docstring)."""

    __slots__ = ("_frames", "_message_size", "_max_message", "_close_sent", "_peer_closed",
                 "_replies", "_publish", "_parts", "_inbound", "_publisher", "_held_close",
                 "_held_ends")

    def __init__(self, subscription: Subscription, sock: Any, frame_key: Any,
                 frame_encode: Callable[[Message, str], bytes], max_message_size: int,
                 publish: Callable[[bytes], bool] | None = None):
        """`publish(content)`: produces one inbound message, blocking its greenlet; False
        when it failed (then the socket closes with 1011). None: data frames are dropped."""
        super().__init__(subscription, sock, frame_key, frame_encode, None, _no_control)
        self._frames: FrameProtocol | None = None
        self._message_size = 0
        self._max_message = max_message_size
        self._close_sent = False
        self._peer_closed = False
        #: reply bytes queued behind half-written frames since the socket last took all
        self._replies = 0
        self._publish = publish
        #: the parts of the inbound message being read (publisher sockets)
        self._parts: list | None = None
        #: whole inbound messages read and not yet published, in the client's order
        self._inbound: deque[bytes] | None = None
        #: the greenlet publishing `_inbound` (only while there is something to publish)
        self._publisher: Any = None
        #: the client's Close read behind messages not yet published: answered after them
        self._held_close: Any = None
        #: `on_end` callbacks of a stream that ended while a publish was in flight
        self._held_ends: list | None = None

    def open(self, head: bytes) -> None:
        """Write the 101 (before any frame: the fan-out writes only from `start` on) and take
        the stream over."""
        if self._send(head, ()) or not self._ended:
            self.start()

    # -- reading ----------------------------------------------------------------------------
    def _watch(self) -> Any:
        watcher = gevent.get_hub().loop.io(self._raw.fileno(), 1)   # 1: readable
        watcher.start(self._guarded, self._readable)
        return watcher

    def _readable(self) -> None:
        try:
            data = self._raw.recv(RECV_SIZE)      # non-blocking (DetachedStream)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:                              # the client left (or was cut)
            self.subscription.close("client-gone")
            self._end()
            return
        if self._ended or self._peer_closed:
            return
        frames = self._frames
        if frames is None:
            frames = self._frames = FrameProtocol(client=False, extensions=[])
        frames.receive_bytes(data)
        try:
            for frame in frames.received_frames():
                opcode = frame.opcode
                if opcode is Opcode.CLOSE:
                    if self._inbound or self._publisher is not None:
                        self._held_close = frame.payload   # after what it sent before
                        self._peer_closed = True
                        return
                    self._client_closed(frame.payload)
                    return
                if self._close_sent:
                    continue                      # waiting for the client's Close
                if opcode is Opcode.PING:
                    self._reply(frames.pong(frame.payload))
                elif opcode is not Opcode.PONG:   # data: dropped unless the socket publishes
                    payload = frame.payload
                    if isinstance(payload, str):
                        payload = payload.encode("utf-8")
                    self._message_size += len(payload)
                    if self._message_size > self._max_message:
                        self._parts = None
                        self._write_last(close_frame(TOO_BIG, "message too big"), "closed")
                        return
                    if self._publish is not None:
                        self._add_part(payload, frame.message_finished)
                    if frame.message_finished:
                        self._message_size = 0
                if self._ended:
                    return
        except ParseFailed as exc:
            logger.info("websocket of %s: invalid frame (%s), closed with %d",
                        self.subscription.label, exc, exc.code)
            self._frames = None
            self._peer_closed = True     # nothing more is parsed: end once our Close is out
            if self._close_sent:
                self._end()
            else:
                self._write_last(close_frame(int(exc.code), f"invalid frame: {exc}"), "closed")
        finally:
            if self._inbound and self._publisher is None:
                self._start_publishing()

    # -- publishing (publisher sockets) ------------------------------------------------------
    def _add_part(self, payload: bytes, finished: bool) -> None:
        parts = self._parts
        if parts is None:
            if finished:                          # the usual case: one frame, one message
                self._queue(payload)
                return
            parts = self._parts = []
        parts.append(payload)
        if finished:
            self._parts = None
            self._queue(b"".join(parts))

    def _queue(self, content: bytes) -> None:
        if self._inbound is None:
            self._inbound = deque()
        self._inbound.append(content)

    def _start_publishing(self) -> None:
        """Backpressure: no read while messages wait for the broker (what is read is at most
        one RECV_SIZE, in the client's order); one greenlet, for as long as they wait."""
        if self._reader is not None and not self._ended:
            self._reader.stop()
        self._publisher = gevent.spawn(self._publish_inbound)

    def _publish_inbound(self) -> None:
        """The publisher greenlet: each message in order; the first failure drops the rest
        (the greenlet path stops reading then too) and closes with 1011."""
        inbound, failed = self._inbound, True
        try:
            while inbound:
                if not self._publish(inbound[0]):
                    break
                inbound.popleft()
            else:
                failed = False
        finally:
            inbound.clear()
            self._inbound = None                  # an idle socket keeps no queue
            self._publisher = None
            self._guarded(lambda: self._settled(failed))

    def _settled(self, failed: bool) -> None:
        """What was read is published: read again, answer the held Close, or finish ending."""
        if self._ended:
            callbacks, self._held_ends = self._held_ends, None
            for callback in callbacks or ():
                callback(self.sent)
            return
        if failed and not self._close_sent:
            self._write_last(close_frame(INTERNAL_ERROR, "the message could not be produced"),
                             "closed")
            if self._ended:
                return
        held, self._held_close = self._held_close, None
        if held is not None:
            self._peer_closed = False
            self._client_closed(held)
        elif self._reader is not None:
            self._reader.start(self._guarded, self._readable)

    def _client_closed(self, payload: Any) -> None:
        """The client's Close: answered (its code echoed) unless ours went out already."""
        self._peer_closed = True
        if self._close_sent:
            self._end()
            return
        code = payload[0] if isinstance(payload, tuple) else None
        frames = self._frames
        reply = frames.close(code) if frames is not None else close_frame(NORMAL)
        self._write_last(bytes(reply), "client-gone")

    # -- writing ----------------------------------------------------------------------------
    def _reply(self, data: bytes) -> None:
        """A control frame: now, or right after the frame(s) left half-written."""
        if self._pending is None:
            self._replies = 0
            self._send(data, ())
            return
        self._pending = memoryview(bytes(self._pending) + data)
        self._replies += len(data)
        if self._replies > REPLY_BACKLOG:
            self.subscription.cut_slow(f"more than {REPLY_BACKLOG} bytes of replies waiting")
            self._end()

    def _write_last(self, data: bytes, kind: str) -> None:
        """Our Close: no data frame after it (RFC 6455 5.5.1)."""
        self.subscription.close(kind)
        self._final = True
        self._close_sent = True
        if self._pending is not None:
            self._pending = memoryview(bytes(self._pending) + data)
            self._arm(FINAL_WRITE_TIMEOUT)
        elif self._send(data, ()):
            self._finished()
        elif not self._ended:
            self._arm(FINAL_WRITE_TIMEOUT)

    def _drain(self) -> None:
        if self._final:                           # closing: the fan-out has nothing to add
            self._scheduled = False
            return
        super()._drain()

    def _last_bytes(self, closed: SubscriptionClosed) -> bytes:
        self._close_sent = True
        return close_frame(_CLOSE_CODES.get(closed.kind, NORMAL),
                           (closed.detail or closed.kind)[:120])

    def _finished(self) -> None:
        """Our Close went out: end now if the client closed, else give it CLOSE_WAIT."""
        if self._peer_closed:
            self._end()
        else:
            self._arm(CLOSE_WAIT)

    def _tick(self) -> None:
        """No heartbeats here: the timer only bounds the closing handshake."""
        if not self._ended:
            self._end()

    def _end(self) -> None:
        if self._ended:
            return
        reader = self._reader
        if self._publisher is not None:
            # in flight (access log, drain) until its publishes settle: `_settled`
            self._held_ends, self._on_end = self._on_end, []
        super()._end()
        self._frames = None
        self._parts = None
        if reader is not None:
            reader.close()
