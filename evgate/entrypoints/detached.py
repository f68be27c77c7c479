"""Fast-path SSE streams served after the WSGI server let go of their connection.

Why: for its whole life an idle stream otherwise keeps the server's per-connection objects
(pywsgi's handler, the 8 KiB read buffer of its rfile, the environ, the request's header
message) and the connection greenlet with its saved stack: the part of an idle client's
~32 KiB that the stream itself does not need (docs/consumption.md, "Memory per idle stream").

The hand-over (gevent_pywsgi worker only: its handler puts `evgate.handover` in the environ,
evgate/workers.py): once the response headers and the first chunk are out, the SSE response
generator moves the socket's fd into a `DetachedStream` (the server's socket object is
detached from it, so the server's close no longer closes it), leaves the stream in the environ
(`evgate.detached`) and raises `HandOver`. The handler catches it and ends the response
without the last chunk and the connection without reading from the socket; the greenlet and
every per-request object are freed.

The fd is taken over, not duplicated: with a duplicate the server's close left the epoll
registration of the closed fd number in the kernel (epoll removes it only once every fd of
the connection is closed); when the client left, that stale registration reported an event
libev could not match and libev rebuilt its whole epoll set (one epoll_ctl per open
connection, per departing client; docs/benchmarks.md, Fan-out). The access log line
and the request metrics (evgate/observability/access.py) are written when the stream really
ends, with its whole duration and bytes; until then it counts as a request in flight, so a
drain waits for its `event: goaway`.

Then everything runs on the hub, without a greenlet: the fan-out writes frames straight to the
non-blocking socket (`offer`, as `DirectWriter.offer`); what it could not write is buffered by
the Subscription, which calls `_schedule` (`Subscription.notify_with`) instead of waking a
greenlet; a libev write watcher finishes a partial write; a libev read watcher notices the
client leaving (ClientWatch); a libev timer writes the heartbeats. The stream ends like the
greenlet path: `event: goaway` / `event: error` then the last chunk (`0\\r\\n\\r\\n`); the
connection is then closed (no further request on it), as is the socket of a departed or too
slow client at once.
"""
from __future__ import annotations

import _socket
import logging
import socket
import time
from typing import Any, Callable, Sequence

import gevent

from ..core.message import Message
from ..core.stream import StreamItem, Subscription, SubscriptionClosed
from .direct_writer import chunk, one_write
from .streaming import ClientWatch, is_plain_tcp

logger = logging.getLogger(__name__)

_monotonic = time.monotonic
_DONTWAIT = socket.MSG_DONTWAIT
_LAST_CHUNK = b"0\r\n\r\n"
HEARTBEAT_CHUNK = chunk(b":\n\n")

#: bytes written per hub turn by one stream's catch-up before others get theirs
DRAIN_BUDGET = 256 * 1024
#: how long the last frames of a stream that ended may wait for a client not reading
FINAL_WRITE_TIMEOUT = 10.0

HANDOVER_KEY = "evgate.handover"
DETACHED_KEY = "evgate.detached"


class HandOver(BaseException):
    """Raised by a response generator whose connection a DetachedStream took over; the
    server's handler recognises it by `takes_connection` (evgate/workers.py). A BaseException,
    so that no `except Exception` on its way takes it for an error."""

    takes_connection = True


def can_hand_over(environ: dict[str, Any], sock: Any) -> bool:
    """The server lets go of connections, and the socket is plain TCP (TLS would need the
    server's SSL object: such streams keep the greenlet path)."""
    return bool(environ.get(HANDOVER_KEY)) and is_plain_tcp(sock)


class DetachedStream:
    """One SSE stream without its server greenlet (see the module docstring)."""

    __slots__ = ("subscription", "_raw", "_key", "_encode", "heartbeat", "_control",
                 "last_write", "sent", "_pending", "_pending_items", "_reader", "_writer",
                 "_timer", "_scheduled", "_final", "_ended", "_on_end")

    def __init__(self, subscription: Subscription, sock: Any, chunk_key: Any,
                 chunk_encode: Callable[[Message, str], bytes], heartbeat: float | None,
                 control: Callable[[SubscriptionClosed], bytes | None]):
        """`sock`: the server's socket; its fd is taken over (the module docstring says why):
        `sock` is detached, the server's close of it is then a no-op. OSError: `sock` is
        unusable and left as it was."""
        raw = _socket.socket(fileno=sock.fileno())
        try:
            raw.setblocking(False)
            sock.detach()
        except BaseException:
            raw.detach()          # the server's socket still owns the fd
            raise
        self.subscription = subscription
        self._raw = raw
        self._key = chunk_key
        self._encode = chunk_encode
        self.heartbeat = heartbeat
        self._control = control
        self.last_write = _monotonic()
        #: bytes written to the client by this stream (the access log adds the server's)
        self.sent = 0
        self._pending: memoryview | None = None
        self._pending_items: Sequence[StreamItem] = ()
        self._reader: ClientWatch | None = None
        self._writer: Any = None
        self._timer: Any = None
        self._scheduled = False
        self._final = False
        self._ended = False
        self._on_end: list[Callable[[int], None]] | None = []

    def start(self) -> None:
        """Take the stream over; writes happen from the next hub turn on."""
        subscription = self.subscription
        subscription.on_overflow = self._cut
        subscription.direct = self.offer
        try:
            self._reader = self._watch()
        except (OSError, ValueError):
            subscription.close("client-gone")
        if self.heartbeat is not None:
            self._arm(self.heartbeat)
        subscription.notify_with(self._schedule)

    def _watch(self) -> Any:
        """The read side: notices the client leaving (a WebSocket also reads its frames)."""
        return ClientWatch(self._raw, self._gone)

    def on_end(self, callback: Callable[[int], None]) -> None:
        """`callback(bytes written here)` once the stream has ended (at once if it has)."""
        if self._on_end is None:
            callback(self.sent)
        else:
            self._on_end.append(callback)

    @property
    def ended(self) -> bool:
        return self._ended

    # -- the fan-out (hub) ------------------------------------------------------------------
    def offer(self, items: Sequence[StreamItem]) -> bool:
        """`Subscription.direct`: True when the items were written (or their rest is owned
        here until the socket takes it); False: the Subscription buffers them."""
        if self._pending is not None or self._ended:
            return False
        data = one_write(items, self._key, self._encode)
        if data is None:
            return False
        try:
            sent = self._raw.send(data, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False          # buffered; `_drain` retries and watches the socket
        except OSError:
            self.subscription.close("client-gone")
            return True
        self._wrote(sent, data, items)
        return True

    # -- the hub's own turns ----------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._scheduled and not self._ended:
            self._scheduled = True
            gevent.get_hub().loop.run_callback(self._guarded, self._drain)

    def _guarded(self, step: Callable[[], None]) -> None:
        """A hub callback of this stream: a failure ends this stream, never the hub's turn."""
        try:
            step()
        except Exception:  # noqa: BLE001 - runs on the hub
            logger.exception("stream of %s failed", self.subscription.label)
            self.subscription.close("error", "stream error")
            self._end()

    def _drain(self) -> None:
        """Write what the Subscription buffered; end the stream once it closed."""
        self._scheduled = False
        if self._ended:
            return
        subscription = self.subscription
        closed = subscription.closed
        if closed is not None and closed.kind in ("client-gone", "slow"):
            self._end()
            return
        budget = DRAIN_BUDGET
        while self._pending is None:
            if not subscription.buffered and subscription.closed is None:
                return
            if budget <= 0:
                self._schedule()      # the rest after the others had their turn
                return
            try:
                items = subscription.get()   # never waits: something is buffered, or closed
            except SubscriptionClosed as why:
                self._close(why)
                return
            if not items:
                continue
            data = b"".join(item.frame(self._key, self._encode) for item in items)
            budget -= len(data)
            if not self._send(data, items):
                return

    def _send(self, data: bytes | memoryview, items: Sequence[StreamItem]) -> bool:
        """Write without blocking; True when all of it went out."""
        try:
            sent = self._raw.send(data, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.subscription.close("client-gone")
            self._end()
            return False
        return self._wrote(sent, data, items)

    def _wrote(self, sent: int, data: bytes | memoryview, items: Sequence[StreamItem]) -> bool:
        if sent:
            self.sent += sent
            self.last_write = _monotonic()
        if sent < len(data):
            self._pending = memoryview(data)[sent:]
            self._pending_items = items
            if self._writer is None:
                self._writer = gevent.get_hub().loop.io(self._raw.fileno(), 2)   # 2: writable
                self._writer.start(self._guarded, self._writable)
            return False
        deliver = self.subscription.delivered
        for item in items:
            deliver(item)
        return True

    def _writable(self) -> None:
        pending, items = self._pending, self._pending_items
        self._pending, self._pending_items = None, ()
        if pending is not None and not self._send(pending, items):
            return
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()
            writer.close()
        if self._final:
            self._finished()
        else:
            self._drain()

    def _close(self, closed: SubscriptionClosed) -> None:
        """The subscription closed and everything buffered went out: the last frames."""
        self._final = True
        if self._send(self._last_bytes(closed), ()):
            self._finished()
        elif not self._ended:
            self._arm(FINAL_WRITE_TIMEOUT)

    def _last_bytes(self, closed: SubscriptionClosed) -> bytes:
        """What ends the stream on the wire: the last frame (if any), then the last chunk."""
        last = self._control(closed)
        return (chunk(last) if last is not None else b"") + _LAST_CHUNK

    def _finished(self) -> None:
        """The last bytes went out."""
        self._end()

    def _arm(self, delay: float) -> None:
        timer = self._timer
        if timer is not None:
            timer.close()
        self._timer = timer = gevent.get_hub().loop.timer(max(delay, 0.001))
        timer.start(self._guarded, self._tick)

    def _tick(self) -> None:
        """Heartbeat when nothing was written for `heartbeat`; the end of a final write's
        patience."""
        if self._ended:
            return
        if self._final:
            logger.info("stream of %s: the client did not take its last frames within %ss",
                        self.subscription.label, FINAL_WRITE_TIMEOUT)
            self._end()
            return
        idle = _monotonic() - self.last_write
        if idle < self.heartbeat:
            self._arm(self.heartbeat - idle)
            return
        if self._pending is None and not self.subscription.buffered:
            self._send(HEARTBEAT_CHUNK, ())
            if self._ended:
                return
        self._arm(self.heartbeat)

    def _gone(self) -> None:
        self.subscription.close("client-gone")

    def _cut(self) -> None:
        """The Subscription's overflow hook (a too slow client): no more writes."""
        try:
            self._raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _end(self) -> None:
        """Release everything, close the connection, tell who waits (access log, metrics)."""
        if self._ended:
            return
        self._ended = True
        subscription = self.subscription
        subscription.direct = None
        self._pending, self._pending_items = None, ()
        for name in ("_writer", "_timer"):
            watcher = getattr(self, name)
            if watcher is not None:
                setattr(self, name, None)
                watcher.stop()
                watcher.close()
        if self._reader is not None:
            self._reader.stop()
            self._reader = None
        try:
            self._raw.close()
        except OSError:
            pass
        if subscription.closed is None:
            subscription.close("closed")
        callbacks, self._on_end = self._on_end, None
        for callback in callbacks or ():
            try:
                callback(self.sent)
            except Exception:  # noqa: BLE001 - runs on the hub
                logger.exception("finishing the stream of %s failed", subscription.label)
