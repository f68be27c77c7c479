"""The SSE fast path: the fan-out writes frames straight to the client's non-blocking socket.

Measured (docs/architecture.md, "Runtime rules"; docs/benchmarks.md): waking one greenlet per client
per message tops out near 70k deliveries/s on this kind of box, while writing the pre-encoded
frame from the fan-out loop and handing a client to its greenlet only when its socket would
block costs a few microseconds per delivery. `DirectWriter` does the latter for one SSE stream:

- `offer` (installed as `Subscription.direct`, called by the fan-out on the hub while the
  client's buffer is empty and its greenlet idle) sends the frames of the items it is given (one
  message, or a whole fan-out batch joined into one write) with MSG_DONTWAIT. All of it
  written: delivered. Part of it: the rest is owned here and the greenlet is woken to finish it
  (cooperatively waiting for the socket). Nothing (EAGAIN): the items go to the buffer as
  before. Frames are never interleaved: the fan-out writes only while the greenlet is parked
  with nothing pending.
- `run` (the client's greenlet, after the server wrote the response headers and the `retry:`
  line) drains the buffer with gevent's `sendall` (everything buffered in one write), writes
  heartbeats and the final `event: error` / `event: goaway`.

One write per batch rather than per message matters under load: measured with a Node load
generator at 10k clients x 10/s (docs/benchmarks.md, Fan-out), writing each message on its own
cost a syscall and a TCP segment per client per message however far behind the hub was, and
latency ran away; joined writes make the cost per delivery fall as batches grow.

It bypasses the WSGI server's writer for everything after the first chunk, so it must frame
bytes exactly like the server: HTTP/1.1 responses of gunicorn's `gevent` and `gevent_pywsgi`
workers without Content-Length are chunked (`<hex length>\\r\\n<data>\\r\\n`; the server writes
the final `0\\r\\n\\r\\n` when the generator ends). The SSE entrypoint uses it only for HTTP/1.1
and when no subscribe-phase policy needs a per-client copy of the message. The access log's
byte count of such a stream covers only what went through the server (the `retry:` line).
Under the gevent_pywsgi worker an SSE stream is served by evgate/entrypoints/detached.py
instead (same writes, no greenlet); this class serves it under the `gevent` worker.
"""
from __future__ import annotations

import contextlib
import logging
import socket
import time
from typing import Any, Callable, Iterator, Sequence

from ..core.stream import StreamItem, Subscription, SubscriptionClosed
from ..core.message import Message

logger = logging.getLogger(__name__)

_monotonic = time.monotonic

#: bytes joined into one write (a fan-out batch on the hub, buffered items in the greenlet)
JOIN_LIMIT = 64 * 1024


def one_write(items: Sequence[StreamItem], key: Any, encode: Callable[..., bytes]
              ) -> bytes | None:
    """The items' frames as one write, or None when together they pass JOIN_LIMIT (the
    caller then buffers them: big messages go out in bounded joins)."""
    if len(items) == 1:
        return items[0].frame(key, encode)
    frames = [item.frame(key, encode) for item in items]
    if sum(map(len, frames)) > JOIN_LIMIT:
        return None
    return b"".join(frames)


_NO_LOCK = contextlib.nullcontext()


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk, as the WSGI server would have framed `data`."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class DirectWriter:
    __slots__ = ("subscription", "sock", "_raw", "_key", "_encode", "heartbeat", "last_write",
                 "_busy", "_pending", "_pending_items", "lock")

    def __init__(self, subscription: Subscription, sock: Any, chunk_key: Any,
                 chunk_encode: Callable[[Message, str], bytes], heartbeat: float | None,
                 lock: Any = None):
        """`chunk_encode(message, cursor)` returns the whole chunk (an SSE HTTP chunk, a
        WebSocket frame); `chunk_key` names that encoding in the items' shared frame cache (one
        encoding per format, not per client). `heartbeat` None: no heartbeats (WebSocket).
        `lock`: a gevent Semaphore held by whoever else writes to the socket (the WebSocket's
        pong and close replies): the hub never writes while it is held, and the greenlet's
        own writes take it (`flush_pending` must run under it before any other frame)."""
        self.lock = lock
        self.subscription = subscription
        self.sock = sock                               # gevent socket: cooperative sendall
        self._raw = getattr(sock, "_sock", sock)       # real socket: send from the hub
        self._key = chunk_key
        self._encode = chunk_encode
        self.heartbeat = heartbeat
        self.last_write = _monotonic()
        self._busy = True                              # until run() parks the greenlet
        self._pending: memoryview | None = None
        self._pending_items: Sequence[StreamItem] = ()

    # -- the fan-out (hub) ------------------------------------------------------------------
    def offer(self, items: Sequence[StreamItem]) -> bool:
        """True when the items were taken (written, or their rest owned until the greenlet
        writes it); False when the caller must buffer them."""
        if self._busy or self._pending is not None or (
                self.lock is not None and self.lock.locked()):
            return False
        data = one_write(items, self._key, self._encode)
        if data is None:
            return False              # big messages: the greenlet writes them in bounded joins
        try:
            sent = self._raw.send(data, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self.subscription.close("client-gone")
            return True
        except Exception:  # noqa: BLE001 - one broken client must not stop the fan-out
            logger.exception("direct write to %s failed", self.subscription.label)
            self.subscription.close("error", "stream error")
            return True
        self.last_write = _monotonic()
        if sent < len(data):
            self._pending = memoryview(data)[sent:]
            self._pending_items = items
            self.subscription.wake()
        else:
            for item in items:
                self.subscription.delivered(item)
        return True

    def _joined(self, items: Sequence[StreamItem]) -> Iterator[bytes]:
        """The items' frames joined into writes of about JOIN_LIMIT bytes at most (a frame
        bigger than that is a write of its own)."""
        group: list[bytes] = []
        size = 0
        for item in items:
            frame = item.frame(self._key, self._encode)
            if group and size + len(frame) > JOIN_LIMIT:
                yield b"".join(group)
                group, size = [], 0
            group.append(frame)
            size += len(frame)
        if group:
            yield group[0] if len(group) == 1 else b"".join(group)

    # -- the client's greenlet --------------------------------------------------------------
    def run(self, control: Callable[[SubscriptionClosed], bytes | None]) -> None:
        """Serve the stream until it closes; `control(closed)` is the last frame, if any."""
        subscription = self.subscription
        subscription.direct = self.offer
        heartbeat = self.heartbeat
        try:
            while True:
                self._busy = False
                wait = None if heartbeat is None else heartbeat - (_monotonic() - self.last_write)
                try:
                    items = subscription.get(timeout=wait) if wait is None or wait > 0 else []
                except SubscriptionClosed as closed:
                    self._busy = True
                    if closed.kind not in ("client-gone", "slow"):
                        with self._locked():
                            self.flush_pending()
                        last = control(closed)
                        if last is not None:
                            self.sock.sendall(chunk(last))
                    return
                self._busy = True
                with self._locked():
                    self.flush_pending()
                    if items:
                        for data in self._joined(items):
                            if data:
                                self.sock.sendall(data)
                        for item in items:
                            subscription.delivered(item)
                        self.last_write = _monotonic()
                    elif heartbeat is not None and _monotonic() - self.last_write >= heartbeat:
                        self.sock.sendall(chunk(b":\n\n"))
                        self.last_write = _monotonic()
        except OSError:
            subscription.close("client-gone")
        finally:
            self._busy = True
            subscription.direct = None

    def _locked(self) -> Any:
        return self.lock if self.lock is not None else _NO_LOCK

    def flush_pending(self) -> None:
        """Finish the frame(s) the hub left half-written (under `lock` when there is one)."""
        pending, items = self._pending, self._pending_items
        if pending is not None:
            self.sock.sendall(pending)
            self._pending, self._pending_items = None, ()
            self.last_write = _monotonic()
            for item in items:
                self.subscription.delivered(item)
