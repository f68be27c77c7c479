"""A client's subscription to an endpoint: a bounded buffer between the fan-out and the client.

The fan-out (a consumer's batch handed to the hub, or the mock's timer) `offer`s each item to
every subscription without ever blocking: when a client's buffer is full the client is too slow,
so it is closed with the reason "slow" (logged; it resumes later by its last id) and the
`on_overflow` hook cuts its connection, which also wakes a greenlet stuck in a socket write.
Only the hub thread touches a Subscription.

Fast path (`direct`): an entrypoint that can write a frame to the client's socket without
blocking (SSE, evgate/entrypoints/direct_writer.py) sets `direct`; while the buffer is empty the
fan-out hands each item to it instead of waking the client's greenlet, which then only runs
when the socket would block, for heartbeats and at the end (docs/architecture.md,
"Runtime rules": the publisher writes the pre-encoded frame straight to each non-blocking socket).

Per idle client this is a small object (slots, an empty list, an Event): thousands of idle
streams per worker are the normal case (docs/benchmarks.md, memory per idle connection).

A `StreamItem` is shared by every client of one fan-out: it carries the message, its cursor
(the wire id) and a cache of encoded frames (`frame()`), so each wire format is encoded once
per message rather than once per client.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

import gevent
from gevent.event import Event

from .message import Message

logger = logging.getLogger(__name__)

_monotonic = time.monotonic


class StreamItem:
    """One record as clients see it. A Kafka reader hands over the raw record (`source`) and
    the function that turns it into a `Message` (`build`): the message is built on the hub the
    first time someone asks for it, so a reader's native thread does not hold the GIL building
    messages, header dicts and metadata that a JSON page (content and cursor only) never reads.
    `content` is the record's value (None for a tombstone) as a plain slot: a JSON page reads
    it for every record, and a property calling the record's `value()` cost ~0.1 us more per
    record; it is the record's own bytes object, not a copy (the ring's memory accounting
    counts it once)."""

    __slots__ = ("_message", "cursor", "frames", "partition_key", "offset", "size", "_source",
                 "_build", "content")

    # positional arguments all (a reader builds one per record: keyword-only ones cost
    # ~1 us more per call in CPython 3.11)
    def __init__(self, message: Message | None, cursor: str, partition_key: Any = None,
                 offset: int = -1, source: Any = None,
                 build: Callable[[Any, str], Message] | None = None, size: int | None = None,
                 content: bytes | None = None):
        self._message = message
        self.cursor = cursor
        self.frames: dict[Any, Any] | None = None
        self.partition_key = partition_key
        self.offset = offset
        self._source = source
        self._build = build
        if message is not None:
            content = None if message.tombstone else message.content
        elif content is None and source is not None:
            content = source.value()
        #: the record's value, None for a tombstone, without building the message
        self.content = content
        #: content bytes (the ring's memory accounting)
        self.size = size if size is not None else len(message.content) if message else 0

    @property
    def message(self) -> Message:
        message = self._message
        if message is None:
            message = self._message = self._build(self._source, self.cursor)
            self._source = None
        return message

    def frame(self, key: Any, encode: Callable[[Message, str], Any]) -> Any:
        """The encoded frame for `key` (format + options), built by the first client asking."""
        frames = self.frames
        if frames is None:
            frames = self.frames = {}
        frame = frames.get(key)
        if frame is None:
            frame = frames[key] = encode(self.message, self.cursor)
        return frame

    def __repr__(self) -> str:
        return f"<StreamItem {self.cursor}>"


class _Notify:
    """Stands in for a Subscription's Event when no greenlet waits (`notify_with`)."""

    __slots__ = ("_callback",)

    def __init__(self, callback: Callable[[], None]):
        self._callback = callback

    def set(self) -> None:
        self._callback()

    def clear(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> bool:
        raise RuntimeError("a subscription read through notify_with() never waits")


class SubscriptionClosed(Exception):
    """The subscription ended; `kind` is end | client-gone | slow | goaway | error | closed."""

    def __init__(self, kind: str, detail: str = ""):
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}" if detail else kind)


class Subscription:
    __slots__ = ("capacity", "label", "start_cursor", "last_cursor", "_items", "_ready",
                 "closed", "_on_close", "on_overflow", "on_ack", "transform", "direct", "on_drain",
                 "__weakref__",
                 # created only if someone adds an attribute (evgate/observability/metrics.py
                 # wraps `delivered` per instance)
                 "__dict__")

    def __init__(self, capacity: int, label: str, start_cursor: str | None = None):
        self.capacity = capacity
        self.label = label
        self.start_cursor = start_cursor
        self.last_cursor = start_cursor
        # A list, not a deque: an empty deque already holds a 64-slot block (~600 bytes), and
        # the reader takes everything at once (swap) far more often than a limited page.
        self._items: list[StreamItem] = []
        self._ready = Event()
        self.closed: SubscriptionClosed | None = None
        self._on_close: list[Callable[["Subscription"], None]] = []
        #: set by the entrypoint: cut the client connection (called on overflow)
        self.on_overflow: Callable[[], None] | None = None
        #: set by the endpoint: called with each item the client has been given (commits)
        self.on_ack: Callable[[StreamItem], None] | None = None
        #: set by the endpoint: rewrite or skip (None) an item for this client only, e.g. while
        #: a client that caught up on its own reader joins a shared tail
        self.transform: Callable[[StreamItem], StreamItem | None] | None = None
        #: set by the entrypoint: write items (a sequence, in order) straight to the client
        #: without blocking; True when it took them all (written, or owned until its greenlet
        #: finishes the write), False when none was taken
        self.direct: Callable[[Sequence[StreamItem]], bool] | None = None
        #: set by a catch-up reader (flow control): called after the client took items, so
        #: the reader hands it more instead of buffering without bound
        self.on_drain: Callable[["Subscription"], None] | None = None

    def __repr__(self) -> str:
        return f"<Subscription {self.label} buffered={len(self._items)}>"

    # -- producer side (fan-out) ------------------------------------------------------------
    def offer(self, item: StreamItem) -> bool:
        if self.closed is not None:
            return False
        transform = self.transform
        if transform is not None:
            item = transform(item)
            if item is None:
                return True  # e.g. already delivered by this client's catch-up reader
        if not self._items and self.direct is not None and self.direct((item,)):
            return self.closed is None
        return self._buffer(item)

    def offer_many(self, items: list[StreamItem]) -> None:
        """Offer a fan-out batch in order. With the fast path and an empty buffer the whole
        batch goes out in ONE write: when the hub falls behind, batches grow and the cost per
        delivery falls (one syscall, one TCP segment and one client wake-up per batch instead
        of per message), which is what let the greenlet path, and not the fast path, keep up
        at 10k clients x 10/s (docs/benchmarks.md, Fan-out)."""
        if self.transform is not None:
            for item in items:        # the per-client rewrite (catch-up join) is per item
                self.offer(item)
            return
        if self.closed is not None:
            return
        if not self._items and self.direct is not None and self.direct(items):
            return
        if len(self._items) + len(items) <= self.capacity:
            self._items.extend(items)     # one wake-up per batch (a catch-up reader's chunk)
            self._ready.set()
            return
        for item in items:
            if not self._buffer(item):
                return

    def _buffer(self, item: StreamItem) -> bool:
        if self.closed is not None:
            return False
        items = self._items
        if len(items) >= self.capacity:
            self.cut_slow(f"more than {self.capacity} messages waiting for the client")
            return False
        items.append(item)
        self._ready.set()
        return True

    def cut_slow(self, detail: str) -> None:
        """Disconnect a client that does not keep up (it resumes later by its last id)."""
        if self.closed is not None:
            return
        logger.warning("client %s is too slow (%d messages buffered); disconnecting it, it "
                       "may resume from %s", self.label, len(self._items), self.last_cursor)
        self.close("slow", detail)
        hook = self.on_overflow
        if hook is not None:
            try:
                hook()
            except Exception:  # noqa: BLE001 - a broken client must not stop the fan-out
                logger.debug("overflow hook of %s failed", self.label, exc_info=True)

    def close(self, kind: str = "closed", detail: str = "") -> None:
        """Idempotent; wakes the reader, which gets SubscriptionClosed once drained."""
        if self.closed is not None:
            return
        self.closed = SubscriptionClosed(kind, detail)
        self.direct = None
        self.on_drain = None
        if kind in ("slow", "client-gone"):
            self._items = []  # nobody will read them; free the memory now
        self._ready.set()
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:  # noqa: BLE001 - close must not raise
                logger.exception("close callback of %s failed", self.label)

    def add_close_callback(self, callback: Callable[["Subscription"], None]) -> None:
        if self.closed is not None:
            callback(self)
        else:
            self._on_close.append(callback)

    # -- consumer side (the client's greenlet) ----------------------------------------------
    def get(self, timeout: float | None = None, limit: int | None = None) -> list[StreamItem]:
        """Buffered items (at most `limit`); [] after `timeout`; SubscriptionClosed at the end."""
        if not self._items and self.closed is None:
            self._ready.wait(timeout)
        items = self._items
        if items:
            if limit is None or limit >= len(items):
                self._items = []
            else:
                items, self._items = items[:limit], items[limit:]
            if not self._items and self.closed is None:
                self._ready.clear()
            drain = self.on_drain
            if drain is not None:
                # The reader hands over more now; never straight to the socket (`direct`):
                # the items returned here are not written yet and must go out first.
                direct, self.direct = self.direct, None
                try:
                    drain(self)
                finally:
                    if self.closed is None:
                        self.direct = direct
            return items
        if self.closed is not None:
            raise self.closed
        self._ready.clear()
        return []

    def wake(self) -> None:
        """Wake the reader without an item (e.g. the `direct` writer left bytes to flush)."""
        self._ready.set()

    def notify_with(self, callback: Callable[[], None]) -> None:
        """A reader without a greenlet (evgate/entrypoints/detached.py): `callback()` is called
        (on the hub, possibly inside `offer` or `close`) whenever items are buffered or the
        subscription closes, instead of setting an Event; the reader then calls `get()` only
        while `buffered` or `closed`, so `get` never waits."""
        self._ready = _Notify(callback)
        if self._items or self.closed is not None:
            callback()

    def delivered(self, item: StreamItem) -> None:
        """The client has been given `item` (written to its socket / page)."""
        self.last_cursor = item.cursor
        if self.on_ack is not None:
            self.on_ack(item)

    @property
    def buffered(self) -> int:
        return len(self._items)


class GroupItem:
    """One record of a committed group stream (`Endpoint.open_group_stream`, the webhook
    entrypoint): where it sits (`topic`, `partition`, `offset`), the assignment `generation` it
    was fetched under (its commit is ignored once the partition moved), the message (built on
    first use, by the endpoint's one conversion) and the record as stored (`key`, `value`,
    `headers`: bytes, for forwarding it verbatim, e.g. to a dead-letter queue)."""

    __slots__ = ("topic", "partition", "offset", "generation", "key", "value", "headers",
                 "_message", "_source", "_build")

    def __init__(self, topic: str, partition: int, offset: int, generation: int, *,
                 key: Any = None, value: bytes | None = None,
                 headers: Sequence[tuple[str, Any]] | None = None,
                 message: Message | None = None, source: Any = None,
                 build: Callable[[Any, str], Message] | None = None):
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.generation = generation
        self.key = key
        self.value = value
        self.headers = headers
        self._message = message
        self._source = source
        self._build = build

    @property
    def partition_key(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    @property
    def position(self) -> str:
        """`topic@partition#offset`: the message id, the same on every worker and retry."""
        return f"{self.topic}@{self.partition}#{self.offset}"

    @property
    def message(self) -> Message:
        message = self._message
        if message is None:
            message = self._message = self._build(self._source, self.position)
            self._source = None
        return message

    def __repr__(self) -> str:
        return f"<GroupItem {self.position} gen={self.generation}>"


def _offer_or_close(subscription: Subscription, items: list[StreamItem], failed: int) -> int:
    """Offer `items` to one subscriber; 1 when that failed (e.g. a message its format cannot
    encode): the subscriber is closed with an error, so its client sees the stream end
    instead of a silent gap, and the pass goes on to the others. The first failure of a pass
    is logged with its traceback, the others counted (`_log_failed`)."""
    try:
        subscription.offer_many(items)
        return 0
    except Exception:  # noqa: BLE001 - one subscriber must not stop the fan-out
        if not failed:
            logger.exception("fan-out to %s failed; closing it", subscription.label)
        subscription.close("error", "stream error")
        return 1


def _log_failed(failed: int) -> None:
    if failed > 1:
        logger.error("fan-out: %d subscribers failed in one pass and were closed (the first "
                     "failure is logged above)", failed)


class FanoutWalk:
    """Offers a live tail's batches to its subscribers from one greenlet that yields to the
    hub every `SLICE` subscribers. Offering a record to 5,000 clients is 5,000 socket writes
    (~50-100 ms): done inside the hub callback that delivered the batch, new connections,
    health checks and the clients' own greenlets waited that long per record; under overload
    the hub ran such callbacks back to back and a new request waited seconds. Batches that
    arrive during a pass are queued and go out together in the next pass, joined into one
    write per client (the further behind, the cheaper each delivery). Small fan-outs (at most
    `SLICE` subscribers, no pass running) are walked inline, as before.

    Yielding is fair to every ready greenlet, and in a connection storm each yield lets every
    pending handshake run (measured: 200 WebSocket upgrades in flight made a pass over 1,700
    clients take seconds): a pass yields only during its first `YIELD_BUDGET` seconds, then
    finishes inline, so a record reaches every client at most one round of other work later."""

    SLICE = 256
    YIELD_BUDGET = 0.05

    __slots__ = ("subscribers", "pending", "_greenlet")

    def __init__(self, subscribers: set[Subscription]):
        self.subscribers = subscribers
        #: records not offered to anybody yet (the newest of the ring)
        self.pending: list[StreamItem] = []
        self._greenlet: Any = None

    def offer(self, items: list[StreamItem]) -> None:
        if self._greenlet is None and len(self.subscribers) <= self.SLICE:
            failed = 0
            for subscription in list(self.subscribers):
                failed += _offer_or_close(subscription, items, failed)
            _log_failed(failed)
            return
        self.pending.extend(items)
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        try:
            while self.pending:
                items, self.pending = self.pending, []
                until = _monotonic() + self.YIELD_BUDGET
                failed = 0
                for n, subscription in enumerate(list(self.subscribers), 1):
                    failed += _offer_or_close(subscription, items, failed)
                    if n % self.SLICE == 0 and _monotonic() < until:
                        gevent.sleep(0)
                _log_failed(failed)
        except Exception:  # noqa: BLE001 - the next batch starts a new pass
            logger.exception("fan-out pass failed")
        finally:
            self._greenlet = None

    def stop(self) -> None:
        self.pending = []


class CachedPage:
    """A page body built ahead (`PageCache`): `ready` is set when the build is over; `body` is
    None when it came out incomplete (a page that would have had to wait for records)."""

    __slots__ = ("ready", "body", "count", "next_cursor", "size", "at")

    def __init__(self) -> None:
        self.ready = Event()
        self.body: bytes | None = None
        self.count = 0
        self.next_cursor: str | None = None
        self.size = 0
        self.at = 0.0


class PageCache:
    """Per worker: response bodies of pages built before their request came (an http-get
    client following `nextCursor` asks for exactly the page after the one it just got), by a
    key that names everything the bytes depend on (evgate/entrypoints/http_get.py). Bounded
    in bytes (the oldest pages go first), a page lives `ttl` seconds unless taken, and a taken
    page leaves the cache: memory follows the clients that are paging right now. Only the
    hub touches it."""

    def __init__(self, max_bytes: int, ttl: float):
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.pages: dict[Any, CachedPage] = {}   # insertion order: the oldest first
        self.bytes = 0
        self.built = 0      # complete pages built (stats)
        self.taken = 0      # pages served from here (stats)
        self.unused = 0     # complete pages dropped unused: expired or evicted (stats)
        self._sweeper: Any = None

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def begin(self, key: Any) -> CachedPage | None:
        """A page to build for `key`; None when the cache is off or one is there already."""
        if self.max_bytes <= 0 or key in self.pages:
            return None
        page = self.pages[key] = CachedPage()
        page.at = _monotonic()
        return page

    def finish(self, key: Any, page: CachedPage, body: bytes | None, count: int = 0,
               next_cursor: str | None = None) -> None:
        """The build of `page` is over; a waiting request gets it, the cache keeps it while
        it fits."""
        page.body, page.count, page.next_cursor = body, count, next_cursor
        page.ready.set()
        if self.pages.get(key) is not page:       # taken while it was built
            if body is not None:
                self.built += 1
                self.taken += 1
            return
        if body is None or len(body) > self.max_bytes:
            del self.pages[key]
            return
        page.size = len(body)
        page.at = _monotonic()
        self.bytes += page.size
        self.built += 1
        for old_key in list(self.pages):          # the oldest first, never the new one
            if self.bytes <= self.max_bytes:
                break
            old = self.pages[old_key]
            if old is not page and old.size:
                self._drop(old_key)
        if self._sweeper is None:
            self._sweeper = gevent.spawn(self._sweep)

    def take(self, key: Any, ready_only: bool = False) -> CachedPage | None:
        """The page for `key`, out of the cache (it may still be building: wait on `ready`,
        unless `ready_only`)."""
        page = self.pages.get(key)
        if page is None or (ready_only and not page.ready.is_set()):
            return None
        del self.pages[key]
        self.bytes -= page.size
        if page.size:
            self.taken += 1
        return page

    def clear(self) -> None:
        for key in list(self.pages):
            self._drop(key)

    def _drop(self, key: Any) -> None:
        page = self.pages.pop(key)
        self.bytes -= page.size
        if page.size:
            self.unused += 1

    def _sweep(self) -> None:
        """Drop complete pages nobody took within `ttl` (memory given back when unused)."""
        try:
            while self.pages:
                gevent.sleep(max(self.ttl / 2, 0.05))
                limit = _monotonic() - self.ttl
                for key, page in list(self.pages.items()):
                    if page.size and page.at <= limit:
                        self._drop(key)
        finally:
            self._sweeper = None

    def stats(self) -> dict[str, int]:
        return {"pages_cached": sum(1 for p in self.pages.values() if p.size),
                "pages_cached_kib": self.bytes // 1024, "pages_built": self.built,
                "pages_taken": self.taken, "pages_unused": self.unused}
