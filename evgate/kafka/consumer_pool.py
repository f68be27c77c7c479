"""The per-worker consumer pool: shared live tails, shared catch-up readers, group readers.

Every non-group consumer is a `Fanout`: one Kafka consumer whose records go to many client
subscriptions, remembering its most recent records in a bounded replay ring.

- The live tail: ONE fanout per (cluster config, topic set) reading the live end. Every
  client that starts at the tail (no cursor) subscribes to it; each record becomes one
  `StreamItem` (cursor and frame cache included) offered to every subscriber, so a frame is
  encoded once per format, not once per client. A client too slow for it is cut (it resumes by
  id). When its last subscriber leaves, the tail stops after `TAIL_LINGER` seconds.
- Catch-up readers: a client resuming from a cursor joins a running fanout (the tail, or a
  reader) when that fanout's ring still holds everything after the cursor, or the fanout is
  at most `stream_reader_share_window` records behind it (the records the client already has
  are skipped for it and its ids never go backwards: `_FloorTransform`). Only otherwise is a
  new reader started at cursor + 1, within `stream_readers_per_worker` and
  `stream_readers_per_api`; past them the client joins a fanout up to
  `stream_reader_crowded_share_window` records behind it, and only without one gets 503 +
  Retry-After. The share window is small because a client that joins a reader far behind
  waits while it reads up to the cursor, and then goes at the pace of its slowest client:
  ten polling clients 5,000 records apart shared readers on a 10,000 window, with twice
  the page p99 and uneven shares (docs/benchmarks.md). A reader is paced by its clients:
  each client is handed records only while its buffer has room, and the reader stops fetching
  (KafkaConsumerBridge.paused) while a client is behind; a client that makes no room for
  `stream_slow_client_ms` is cut as slow. Its fetch queue and ring stay under
  `stream_reader_memory_kib`. Without clients it keeps reading ahead a little (the next
  http-get page usually asks for exactly where the last one ended: the ring answers it) and
  closes after `stream_reader_idle_ms`, giving its memory back. When a reader reaches the
  tail it hands its clients over to it, or becomes the tail if there is none.
- Spares: up to `stream_reader_spares` idle consumers per worker, already connected (topic
  metadata and partition leaders) for topics the worker recently opened streams on. A new
  catch-up reader takes a ready spare and only assign()s it (a client's first page from a
  cursor: ~5 ms instead of ~60 ms of connection set-up), and the pool makes a new spare in the
  background. Spares count toward `stream_readers_per_worker` (closed first when it is
  reached) and close after `stream_reader_idle_ms` without a stream opened on their topics.
- GroupReader: clients sending X-Gravitee-Client-Identifier share a consumer group; each gets
  its own group member (counted in the reader caps), Kafka splits the partitions, committed
  offsets resume it.

Everything here runs on the hub; the consumers' blocking calls run on their native threads
(evgate/kafka/consumer.py).
"""
from __future__ import annotations

import gc
import logging
import os
import time
from bisect import bisect_left
from operator import attrgetter
from typing import Any, Mapping

import gevent
from gevent.event import AsyncResult

from ..config import Config
from ..core.stream import FanoutWalk, PageCache, StreamItem, Subscription
from ..errors import BackendUnavailableError, BadRequestError
from . import cursor as cursors
from .client_config import common_config
from .consumer import KafkaConsumerBridge, Start, UnknownPartition

logger = logging.getLogger(__name__)

Position = dict[tuple[str, int], int]

TAIL_LINGER = 0.5
PAGE_TTL = 2.0   # seconds a page built ahead waits for its request at most

_SIZE = attrgetter("size")
_CURSOR = attrgetter("cursor")
_PARTITION_KEY = attrgetter("partition_key")
_OFFSET = attrgetter("offset")


def consumer_config(endpoint_conf: Mapping[str, Any], config: Config) -> dict[str, Any]:
    conf = common_config(endpoint_conf, config)
    conf.update({
        # librdkafka waits up to fetch.wait.max.ms (500 by default) for fetch.min.bytes:
        # that wait is latency for every streamed record.
        "fetch.wait.max.ms": config.kafka_consumer_fetch_wait_ms,
        "fetch.error.backoff.ms": 50,
        "socket.nagle.disable": True,
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": 1000,
        "queued.max.messages.kbytes": 16384,
    })
    return conf


def _key(conf: Mapping[str, Any], topics: tuple[str, ...]) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in conf.items())), topics


class Fanout:
    """One consumer fanned out to many subscriptions: the live tail or a catch-up reader."""

    def __init__(self, pool: "ConsumerPool", key: tuple, conf: dict[str, Any],
                 topics: tuple[str, ...], start_position: Position | None = None, *,
                 live: bool, api_id: str | None = None):
        self.pool = pool
        self.key = key
        self.conf = conf
        self.topics = topics
        self.live = live
        self.api_id = api_id
        self.start_position = start_position
        self.subscribers: set[Subscription] = set()
        #: a tail's passes over its subscribers (core/stream.py)
        self.walk = FanoutWalk(self.subscribers)
        self.position: Position | None = None
        self.partitions: frozenset[tuple[str, int]] = frozenset()
        self.ready = AsyncResult()
        self.stopped = False
        # The replay ring: the most recent records, numbered; `ring_base` is, per partition,
        # the offset of the last record dropped from it (a client at or past it on every
        # partition can be served from the ring).
        self.ring: list[StreamItem] = []
        self.ring_bytes = 0
        self.ring_base: Position = {}
        self.first_seq = 0
        self.head_seq = 0
        # a ring record's number by its cursor, for several partitions; a one-partition
        # fanout (`one`: its partition) finds it by offset in the ring (`seq_of`) instead:
        # no dict entry to make and delete per record
        self.seq_by_cursor: dict[str, int] = {}
        self.one: tuple[str, int] | None = None
        # a tail replays its ring to a joining client at once: half a client buffer at most
        self.max_records = pool.ring_records if not live else pool.batch * 2
        self.max_bytes = pool.memory_bytes
        # catch-up readers: the next ring record to hand to each subscriber, and since when a
        # subscriber has had no room (flow control, slow-client cut)
        self.next_seq: dict[Subscription, int] = {}
        self.blocked_since: dict[Subscription, float] = {}
        self.at_end: dict[tuple[str, int], bool] = {}
        # without subscribers: the ring record after the last one a departed client was given
        # (an http-get page's end), where the next client most likely continues
        self.idle_mark = 0
        self.idle_since: float | None = time.monotonic()
        self._timer: Any = None
        start = (Start("tail", topics) if start_position is None
                 else Start("offsets", topics, dict(start_position)))
        kind = "tail" if live else "catchup"
        name = f"{kind}{pool.next_id()}"
        spare = None if live else pool.take_spare(key, start, self, name)
        self.bridge = spare or KafkaConsumerBridge(conf if live else pool.reader_conf(conf),
                                                   start, self, name=name,
                                                   setup_timeout=pool.setup_timeout,
                                                   batch=pool.batch)

    def __repr__(self) -> str:
        kind = "tail" if self.live else "reader"
        return f"<Fanout {kind} {','.join(self.topics)} subscribers={len(self.subscribers)}>"

    # -- sink (hub) -------------------------------------------------------------------------
    def on_ready(self, position: Position) -> None:
        self.position = dict(position)
        self.ring_base = dict(position)
        self.partitions = frozenset(position)
        self.one = next(iter(position)) if len(position) == 1 else None
        self.pool.learn_partitions(self.key, self.partitions)
        self.ready.set(True)
        if self.live:
            self.pool.tail_ready(self)
        else:
            self._schedule()

    def on_start_failed(self, error: Exception) -> None:
        self.stopped = True
        self.pool.forget(self)
        self.ready.set_exception(error)

    def on_batch(self, items: list[StreamItem], position: Position, eof: Any) -> None:
        # per batch, not per record where it can be (the hub's time per page: bench/poll.py)
        head = self.head_seq
        if self.one is not None and items and self.ring \
                and items[0].offset <= self.ring[-1].offset:
            self._index_by_cursor()
        self.ring.extend(items)
        self.ring_bytes += sum(map(_SIZE, items))
        if self.one is None:
            self.seq_by_cursor.update(zip(map(_CURSOR, items), range(head, head + len(items))))
        self.head_seq = head + len(items)
        if self.one is None:
            self.at_end.update(dict.fromkeys(map(_PARTITION_KEY, items), False))
        elif items:
            self.at_end[self.one] = False
        for key in eof or ():
            self.at_end[key] = True
        self.position = position
        if self.live:
            # per subscriber, the whole batch: the SSE fast path writes it in one syscall
            self.walk.offer(items)
            self._trim()
            return
        for subscription in list(self.subscribers):
            self._feed(subscription)
        self._trim()
        if not self.stopped and not self._reach_tail():
            self._flow()

    def on_lost(self, reason: str) -> None:
        logger.error("kafka lost under %r: %s; closing its %d streams (clients resume by id)",
                     self, reason, len(self.subscribers))
        subscribers = list(self.subscribers)
        self.stop()
        for subscription in subscribers:
            subscription.close("error", f"Kafka is unreachable: {reason}")

    # -- the ring ---------------------------------------------------------------------------
    def _trim(self) -> None:
        """Drop the oldest records beyond the ring's bounds, never one a subscriber still
        needs (flow control keeps that overshoot to the batches in flight). The ring is a
        list: the records to drop go in one slice deletion (their bookkeeping in C loops),
        not one popleft and four dict operations per record (~12% of the worker's time per
        http-get page before; docs/benchmarks.md, Polling)."""
        ring = self.ring
        excess_bytes = self.ring_bytes - self.max_bytes
        drop = len(ring) - self.max_records
        if drop <= 0 and excess_bytes <= 0:
            return
        # a tail's subscribers got every record already; a reader keeps what a client still
        # needs, and without clients what the next one most likely asks for
        needed = self.head_seq if self.live else min(
            self.next_seq.values(), default=max(self.idle_mark, self.first_seq))
        limit = max(0, min(len(ring), needed - self.first_seq))
        drop = max(0, min(drop, limit))
        if excess_bytes > 0 and excess_bytes > sum(map(_SIZE, ring[:drop])):
            # the memory bound: more records
            freed = 0
            for drop, size in enumerate(map(_SIZE, ring[:limit]), 1):
                freed += size
                if freed >= excess_bytes:
                    break
            else:
                drop = limit
        if drop <= 0:
            return
        dropped = ring[:drop]
        del ring[:drop]
        self.ring_bytes -= sum(map(_SIZE, dropped))
        if self.one is None:
            self.ring_base.update(zip(map(_PARTITION_KEY, dropped), map(_OFFSET, dropped)))
            # a cursor read again later (a reader that rewound) maps to its newer place: only
            # the entries of the dropped places go
            seq_by_cursor = self.seq_by_cursor
            for seq, cursor in enumerate(map(_CURSOR, dropped), self.first_seq):
                if seq_by_cursor.get(cursor) == seq:
                    del seq_by_cursor[cursor]
        else:
            self.ring_base[self.one] = dropped[-1].offset
        self.first_seq += drop

    def _index_by_cursor(self) -> None:
        """The partition's offsets went back (a log truncated and read again after an offset
        reset): `seq_of`'s bisection needs them increasing, so from now on records are found
        by cursor, as on several partitions, the newest place of a cursor read twice
        winning."""
        self.one = None
        first = self.first_seq
        self.seq_by_cursor = {item.cursor: first + index for index, item in enumerate(self.ring)}

    def seq_of(self, position: Position) -> int | None:
        """The number of the ring record whose cursor is `position` (complete), or None. One
        partition: its offsets in the ring increase (Kafka's order within a partition), so a
        bisection finds it; a record that does not match is treated as absent (the callers
        then replay with `_FloorTransform`, or build nothing ahead: never a wrong record)."""
        one = self.one
        if one is None:
            return self.seq_by_cursor.get(cursors.encode(position))
        offset = position.get(one)
        ring = self.ring
        index = bisect_left(ring, offset, key=_OFFSET) if offset is not None else len(ring)
        if index < len(ring) and ring[index].offset == offset and len(position) == 1:
            return self.first_seq + index
        return None

    def _seq_of_cursor(self, cursor: str | None) -> int | None:
        if self.one is None or not cursor:
            return self.seq_by_cursor.get(cursor or "")
        try:
            return self.seq_of(cursors.parse(cursor))
        except cursors.CursorError:
            return None

    def complete(self, position: Position) -> Position:
        """A client's position on every partition (one its cursor does not name starts at the
        beginning, as a fresh reader would)."""
        return {key: position.get(key, -1) for key in self.partitions}

    def can_serve(self, position: Position, window: int) -> bool:
        """True when a client at `position` can join without a gap: the ring still holds
        everything after it, and it is at most `window` records ahead of this fanout."""
        if self.stopped or self.position is None or not set(position) <= self.partitions:
            return False
        full = self.complete(position)
        here = self.position
        return all(full[key] >= self.ring_base.get(key, -1)
                   and full[key] - here.get(key, -1) <= window for key in full)

    # -- membership -------------------------------------------------------------------------
    def add(self, subscription: Subscription, position: Position | None = None) -> None:
        """Subscribe a client at `position` (None: the fanout's current position); the caller
        checked `can_serve`."""
        full = self.complete(position) if position is not None else dict(self.position or {})
        here = self.position or {}
        seq = self.head_seq
        transform = None
        if full != here:
            exact = self.seq_of(full)
            if exact is not None:
                seq = exact + 1              # a page boundary: replay from the ring as is
            else:
                seq = self.first_seq         # the floor skips what the client already has
                transform = _FloorTransform(subscription, full)
        subscription.transform = transform
        self.subscribers.add(subscription)
        self.idle_since = None
        subscription.add_close_callback(self._remove)
        if self.live:
            # what the walk has not offered to anybody yet reaches this client with the others;
            # a client already past some of it (its cursor, from another worker) skips those
            end = self.head_seq - len(self.walk.pending)
            if seq > end:
                subscription.transform = _FloorTransform(subscription, full)
            stop = max(0, end - self.first_seq)    # the ring may be shorter than the walk's queue
            replay = self.ring[min(seq - self.first_seq, stop):stop]
            if replay:
                subscription.offer_many(replay)
            return
        self.next_seq[subscription] = seq
        subscription.on_drain = self._drained
        self._feed(subscription)
        self._flow()

    def _remove(self, subscription: Subscription) -> None:
        self.subscribers.discard(subscription)
        fed = self.next_seq.pop(subscription, None)
        if fed is not None:
            last = self._seq_of_cursor(subscription.last_cursor)
            self.idle_mark = last + 1 if last is not None else fed
        self.blocked_since.pop(subscription, None)
        if self.subscribers or self.stopped:
            return
        self.idle_since = time.monotonic()
        if self.live:
            gevent.spawn_later(TAIL_LINGER, self._stop_if_unused)
        else:
            self._flow()

    def _stop_if_unused(self) -> None:
        if not self.subscribers and not self.stopped:
            self.stop()

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.pool.forget(self)
            self.bridge.trim_on_close = not self.live or self.pool.closed
            self.bridge.stop()
            if self._timer is not None:
                self._timer.kill(block=False)
            self.walk.stop()
            self.ring.clear()
            self.seq_by_cursor.clear()
            self.ring_bytes = 0
            for subscription in self.subscribers:
                subscription.on_drain = None

    # -- flow control (catch-up readers) ----------------------------------------------------
    def _window(self, subscription: Subscription) -> int:
        return max(1, min(subscription.capacity, 2 * self.pool.batch))

    def _feed(self, subscription: Subscription) -> None:
        """Hand a subscriber what it has room for."""
        seq = self.next_seq.get(subscription)
        if seq is None:
            return
        window = self._window(subscription)
        while seq < self.head_seq and subscription.closed is None:
            room = window - subscription.buffered
            if room <= 0:
                break
            start = seq - self.first_seq
            chunk = self.ring[start:start + room]
            if not chunk:
                break
            subscription.offer_many(chunk)
            seq += len(chunk)
        if subscription.closed is not None:
            return
        self.next_seq[subscription] = seq
        if seq < self.head_seq:
            self.blocked_since.setdefault(subscription, time.monotonic())
        else:
            self.blocked_since.pop(subscription, None)

    def _drained(self, subscription: Subscription) -> None:
        if self.stopped or subscription not in self.next_seq:
            return
        was_behind = self.next_seq[subscription] < self.head_seq
        self._feed(subscription)
        if was_behind:
            self._trim()
            if not self._reach_tail():
                self._flow()

    def _flow(self) -> None:
        """Fetch while every subscriber has taken nearly everything, with a little read-ahead
        (a page's worth) kept for the next client; pause otherwise."""
        if self.stopped or self.live:
            return
        lookahead = self.max_records // 2
        if self.next_seq:
            behind = self.head_seq - min(self.next_seq.values())
            pause = behind >= lookahead or self.ring_bytes >= self.max_bytes
        else:
            ahead = self.head_seq - max(self.idle_mark, self.first_seq)
            pause = ahead >= lookahead or self.ring_bytes >= self.max_bytes
        self.bridge.paused = pause

    def _reach_tail(self) -> bool:
        """A reader whose subscribers all have everything it read hands them to the tail when
        the tail can serve its position, or becomes the tail when it is at the end of every
        partition and there is none. True when this reader is done."""
        if self.position is None or any(seq < self.head_seq for seq in self.next_seq.values()):
            return False
        tail = self.pool.tails.get(self.key)
        if tail is None or tail.stopped:
            if self.subscribers and self.at_end and all(self.at_end.get(key)
                                                        for key in self.partitions):
                self.pool.promote(self)
                return True
            return False
        if tail.position is None or not self.subscribers \
                or not tail.can_serve(self.position, 0):
            return False
        logger.debug("%r caught up; handing %d client(s) to %r", self, len(self.subscribers),
                     tail)
        for subscription in list(self.subscribers):
            floor = dict(self.position)
            transform = subscription.transform
            if isinstance(transform, _FloorTransform):
                for key, offset in transform.floor.items():
                    floor[key] = max(floor.get(key, -1), offset)
            subscription.on_drain = None
            self.subscribers.discard(subscription)
            self.next_seq.pop(subscription, None)
            tail.add(subscription, floor)
        self.stop()
        return True

    def become_tail(self) -> None:
        self.live = True
        self.next_seq.clear()
        self.blocked_since.clear()
        self.bridge.paused = False
        self.max_records = self.pool.batch * 2
        for subscription in self.subscribers:
            subscription.on_drain = None
        self._trim()

    # -- idle close and slow clients (one timer greenlet per reader) ------------------------
    def _schedule(self) -> None:
        if self._timer is None and not self.stopped:
            self._timer = gevent.spawn(self._watch)

    def _watch(self) -> None:
        pool = self.pool
        while not self.stopped and not self.live:
            gevent.sleep(min(pool.idle, pool.slow, 1.0) / 2 or 0.05)
            now = time.monotonic()
            for subscription, since in list(self.blocked_since.items()):
                if now - since >= pool.slow:
                    self.blocked_since.pop(subscription, None)
                    subscription.cut_slow(f"took nothing for {pool.slow:.0f}s while its reader "
                                          "waited")
            if not self.subscribers and self.idle_since is not None \
                    and now - self.idle_since >= pool.idle:
                logger.debug("%r idle for %.1fs; closing it", self, now - self.idle_since)
                self._timer = None
                self.stop()
                return
            self._flow()
        self._timer = None


class _FloorTransform:
    """Per-client view of a shared fanout for a client that joined it ahead of its ring
    position: records it already has are skipped, its ids never go backwards."""

    def __init__(self, subscription: Subscription, floor: Position):
        self.subscription = subscription
        self.floor = floor

    def __call__(self, item: StreamItem) -> StreamItem | None:
        if item.offset <= self.floor.get(item.partition_key, -2):
            return None
        position = cursors.parse(item.cursor)
        merged = dict(position)
        for key, offset in self.floor.items():
            if merged.get(key, -2) < offset:
                merged[key] = offset
        if merged == position:       # the fanout has passed the floor: share its frames again
            self.subscription.transform = None
            return item
        return StreamItem(item.message, cursors.encode(merged), item.partition_key, item.offset)


class _Reader:
    """A consumer owned by one subscription (catch-up or group member)."""

    def __init__(self, pool: "ConsumerPool", subscription: Subscription):
        self.pool = pool
        self.subscription = subscription
        self.ready = AsyncResult()
        self.position: Position = {}
        self.bridge: KafkaConsumerBridge | None = None
        self.stopped = False
        self.api_id: str | None = None
        subscription.add_close_callback(lambda _s: self.stop())

    def on_ready(self, position: Position) -> None:
        self.position = position
        self.ready.set(True)

    def on_start_failed(self, error: Exception) -> None:
        self.stopped = True
        self.ready.set_exception(error)
        self.pool.readers.discard(self)

    def on_batch(self, items: list[StreamItem], position: Position, eof: bool) -> None:
        for item in items:
            if not self.subscription.offer(item):
                return
        self.position = position

    def on_lost(self, reason: str) -> None:
        self.stop()
        self.subscription.close("error", f"Kafka is unreachable: {reason}")

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.pool.readers.discard(self)
            if self.bridge is not None:
                self.bridge.stop()


class GroupReader(_Reader):
    def __init__(self, pool: "ConsumerPool", subscription: Subscription, conf: dict[str, Any],
                 topics: tuple[str, ...], group_id: str, qos: str):
        super().__init__(pool, subscription)
        conf = pool.reader_conf(conf)
        if qos != "at-least-once":
            conf["enable.auto.offset.store"] = True   # auto: offsets stored as fetched
        self.bridge = KafkaConsumerBridge(conf, Start("group", topics, group_id=group_id), self,
                                          name=f"group{pool.next_id()}",
                                          setup_timeout=pool.setup_timeout, batch=pool.batch)
        if qos == "at-least-once":
            bridge = self.bridge
            subscription.on_ack = lambda item: bridge.store_offsets(
                [(item.partition_key[0], item.partition_key[1], item.offset)])


class _Spare:
    """An idle, connected consumer waiting to become a catch-up reader (the bridge's sink
    until it is claimed)."""

    def __init__(self, pool: "ConsumerPool", key: tuple, conf: dict[str, Any],
                 topics: tuple[str, ...]):
        self.pool = pool
        self.key = key
        self.used = time.monotonic()   # the last stream opened on its topics
        self.bridge = KafkaConsumerBridge(pool.reader_conf(conf), Start("spare", topics), self,
                                          name=f"spare{pool.next_id()}",
                                          setup_timeout=pool.setup_timeout, batch=pool.batch)

    def on_start_failed(self, error: Exception) -> None:
        logger.debug("spare consumer for %s failed: %s", ",".join(self.key[1]), error)
        self.pool.drop_spare(self)

    def on_lost(self, reason: str) -> None:
        self.pool.drop_spare(self)

    def on_ready(self, position: Position) -> None:    # only after claim(): the reader's
        pass

    def on_batch(self, items: list[StreamItem], position: Position, eof: Any) -> None:
        pass


class ConsumerPool:
    """Per worker (created lazily by the runtime after the fork)."""

    RETRY_AFTER = 2   # seconds, with 503 when the reader caps are reached
    # seconds after a reader took a spare before its replacement is made: past the reader's
    # first page (a client's first page from a cursor takes ~5-30 ms)
    SPARE_REFILL_DELAY = 0.1

    def __init__(self, config: Config):
        self.config = config
        self.pid = os.getpid()
        self.setup_timeout = config.kafka_consumer_setup_timeout_ms / 1000
        # A batch is offered to every client at once: keep it well under a client's buffer,
        # or even fast clients would overflow within one batch.
        self.batch = max(1, min(500, config.stream_client_buffer // 4))
        self.memory_bytes = config.stream_reader_memory_kib * 1024
        self.ring_records = max(4 * self.batch, 2 * config.stream_client_buffer)
        self.share_window = config.stream_reader_share_window
        self.crowded_window = max(self.share_window, config.stream_reader_crowded_share_window)
        self.idle = config.stream_reader_idle_ms / 1000
        self.slow = config.stream_slow_client_ms / 1000
        self.tails: dict[tuple, Fanout] = {}
        self.catchups: dict[tuple, list[Fanout]] = {}
        self.readers: set[_Reader] = set()    # group members
        self.partitions: dict[tuple, tuple[float, frozenset]] = {}
        self._ids = 0
        self.readers_started = 0   # catch-up readers started so far (stats)
        self.spares: list[_Spare] = []
        #: keys whose spares are topped up in SPARE_REFILL_DELAY (`_ensure_spares(later=True)`)
        self._refills: set[tuple] = set()
        self.spares_taken = 0      # catch-up readers that started on a spare (stats)
        self.max_spares = config.stream_reader_spares
        self._spare_watch: Any = None
        #: http-get pages built ahead (evgate/entrypoints/http_get.py), bounded per worker
        self.pages = PageCache(config.stream_page_prefetch_kib * 1024,
                               min(PAGE_TTL, self.idle) if self.idle else PAGE_TTL)
        self.closed = False
        self._stats_greenlet = None
        if config.stream_stats_interval_ms:
            self._stats_greenlet = gevent.spawn(self._log_stats,
                                                config.stream_stats_interval_ms / 1000)

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def reader_conf(self, conf: dict[str, Any]) -> dict[str, Any]:
        """A catch-up reader's librdkafka settings: what it prefetches stays small."""
        kib = max(64, self.config.stream_reader_memory_kib)
        reader = dict(conf)
        reader.update({
            "queued.max.messages.kbytes": kib,
            "queued.min.messages": max(100, 4 * self.batch),
            "fetch.max.bytes": max(kib * 1024, 1024 * 1024),
            "max.partition.fetch.bytes": min(kib * 1024, 1024 * 1024),
            # librdkafka postpones the next fetch by this much once the queue was full (1 s
            # by default): a paused reader would stall its next page for a second
            "fetch.queue.backoff.ms": 5,
        })
        return reader

    # -- opening streams --------------------------------------------------------------------
    def subscribe(self, endpoint_conf: Mapping[str, Any], topics: list[str], *,
                  position: Position | None, group_id: str | None, qos: str, capacity: int,
                  label: str, auto_offset_reset: str = "latest",
                  api_id: str | None = None, _attempt: int = 0) -> Subscription:
        """A ready subscription; BadRequestError for a cursor naming an unknown partition,
        BackendUnavailableError when Kafka cannot be reached or the reader caps are reached."""
        if self.closed:
            raise BackendUnavailableError("the gateway is stopping; retry on another node.")
        conf = consumer_config(endpoint_conf, self.config)
        topic_set = tuple(sorted(set(topics)))
        key = _key(conf, topic_set)
        if group_id is not None:
            self._check_caps(api_id)
            subscription = Subscription(capacity, label)
            conf["auto.offset.reset"] = auto_offset_reset
            reader: _Reader = GroupReader(self, subscription, conf, topic_set, group_id, qos)
            reader.api_id = api_id
            self.readers.add(reader)
            self._wait(reader.ready, subscription)
            return subscription
        if position is not None:
            self._check_partitions(key, position)
        tail = self.tails.get(key)
        if position is None or (tail is not None and tail.position == position):
            if tail is None:
                tail = self.start_tail(key, conf, topic_set)
            self._ensure_spares(key, conf, topic_set)
            subscription = Subscription(capacity, label)
            self._wait(tail.ready, subscription)
            subscription.start_cursor = subscription.last_cursor = cursors.encode(tail.position)
            tail.add(subscription)
            return subscription
        subscription = Subscription(capacity, label, start_cursor=cursors.encode(position))
        window = self.share_window
        fanout = self._shared(key, position, window)
        if fanout is None:
            try:
                self._check_caps(api_id, key)
            except BackendUnavailableError:
                # past a cap: a reader further behind still serves this client (it waits
                # while the reader reads up to its cursor), which beats a 503
                window = self.crowded_window
                fanout = self._shared(key, position, window)
                if fanout is None:
                    raise
            else:
                fanout = Fanout(self, key, conf, topic_set, position, live=False,
                                api_id=api_id)
                self.readers_started += 1
                self.catchups.setdefault(key, []).append(fanout)
        self._wait(fanout.ready, subscription)
        # the spare taken is replaced once this reader's first page is out (making a consumer
        # holds the hub ~1-4 ms: it delayed the reader's first batch by as much)
        self._ensure_spares(key, conf, topic_set, later=True)
        if fanout.stopped or not fanout.can_serve(position, window):
            # it moved on (or stopped) while this client waited for it to start: try again
            subscription.close("closed")
            if _attempt >= 2:
                raise BackendUnavailableError("the reader for this position went away; retry",
                                              retry_after=self.RETRY_AFTER)
            return self.subscribe(endpoint_conf, topics, position=position, group_id=None,
                                  qos=qos, capacity=capacity, label=label,
                                  auto_offset_reset=auto_offset_reset, api_id=api_id,
                                  _attempt=_attempt + 1)
        fanout.add(subscription, position)
        return subscription

    def join(self, endpoint_conf: Mapping[str, Any], topics: list[str], position: Position,
             *, capacity: int, label: str, min_records: int = 0) -> Subscription | None:
        """A subscription at `position` on a running fanout whose ring already holds the
        `min_records` records after it (for a page built ahead: the reader that served the
        page before), or None. It never starts a reader or takes a spare, and never waits at
        the live end (a reader with a subscriber there would become the tail), so building
        ahead takes no reader slot and leaves the readers' caps, memory and state alone."""
        if self.closed or not position:
            return None
        conf = consumer_config(endpoint_conf, self.config)
        key = _key(conf, tuple(sorted(set(topics))))
        fanout = self._shared(key, position)
        if fanout is None or fanout.position is None \
                or not fanout.can_serve(position, self.share_window):
            return None
        seq = fanout.seq_of(fanout.complete(position))
        if seq is None or fanout.head_seq - seq - 1 < min_records:
            return None
        subscription = Subscription(capacity, label, start_cursor=cursors.encode(position))
        fanout.add(subscription, position)
        return subscription

    def _shared(self, key: tuple, position: Position, window: int | None = None
                ) -> Fanout | None:
        """A running fanout that can serve a client at `position` (at most `window` records
        ahead of it, by default the share window), or one starting there."""
        window = self.share_window if window is None else window
        tail = self.tails.get(key)
        if tail is not None and tail.position is not None \
                and tail.can_serve(position, window):
            return tail
        best = None
        for fanout in self.catchups.get(key, ()):
            if fanout.stopped:
                continue
            if fanout.position is None:
                if fanout.start_position == position:
                    return fanout        # starting at the same place: wait for it
                continue
            if fanout.can_serve(position, window):
                # the nearest: the fewest records to skip
                distance = sum(fanout.complete(position)[k] - fanout.position.get(k, -1)
                               for k in fanout.partitions)
                if best is None or distance < best[0]:
                    best = (distance, fanout)
        return best[1] if best else None

    def _check_partitions(self, key: tuple, position: Position) -> None:
        """400 for a cursor naming a partition the topics do not have, when a running consumer
        told us the partitions recently (else the new reader checks it against Kafka)."""
        known = self.partitions.get(key)
        if known is None or time.monotonic() - known[0] > 30:
            return
        unknown = sorted(set(position) - known[1])
        if unknown:
            raise BadRequestError(
                "invalid message id / cursor: it names partition(s) the topic does not have: "
                + ", ".join(f"{t}@{p}" for t, p in unknown), key="INVALID_CURSOR")

    def learn_partitions(self, key: tuple, partitions: frozenset) -> None:
        self.partitions[key] = (time.monotonic(), partitions)

    def reader_count(self, api_id: str | None = None) -> int:
        fanouts = [f for group in self.catchups.values() for f in group if not f.stopped]
        readers = list(fanouts) + list(self.readers)
        if api_id is None:
            return len(readers)
        return sum(1 for r in readers if getattr(r, "api_id", None) == api_id)

    def _consumers(self, key: tuple | None = None) -> int:
        """Readers and spares, as the per-worker cap counts them when a new reader for `key`
        is about to start (it takes a ready spare of `key` if there is one: no new consumer)."""
        spares = len(self.spares)
        if key is not None and any(s.key == key and s.bridge.spare_state == "ready"
                                   for s in self.spares):
            spares -= 1
        return self.reader_count() + spares

    def _check_caps(self, api_id: str | None, key: tuple | None = None) -> None:
        per_worker = self.config.stream_readers_per_worker
        per_api = self.config.stream_readers_per_api
        while self._consumers(key) >= per_worker and self._drop_lru_spare(key):
            pass     # spares go first: they serve nobody yet
        if self._consumers(key) >= per_worker:
            self._reclaim_idle()
        if self._consumers(key) >= per_worker:
            logger.warning("reader cap reached: %d readers in this worker", per_worker)
            raise BackendUnavailableError(
                f"too many clients reading from old positions on this gateway worker (at most "
                f"{per_worker} readers); retry later", retry_after=self.RETRY_AFTER,
                key="TOO_MANY_READERS")
        if api_id is not None and self.reader_count(api_id) >= per_api:
            self._reclaim_idle(api_id)
            if self.reader_count(api_id) >= per_api:
                logger.warning("reader cap reached: %d readers for api %s", per_api, api_id)
                raise BackendUnavailableError(
                    f"too many clients reading from old positions of this API (at most "
                    f"{per_api} readers per worker); retry later", retry_after=self.RETRY_AFTER,
                    key="TOO_MANY_READERS")

    def _reclaim_idle(self, api_id: str | None = None) -> None:
        """Close the longest idle reader without clients (kept only to be warm)."""
        idle = [f for group in self.catchups.values() for f in group
                if not f.stopped and not f.subscribers and f.idle_since is not None
                and (api_id is None or f.api_id == api_id)]
        if idle:
            min(idle, key=lambda f: f.idle_since).stop()

    def _wait(self, ready: AsyncResult, subscription: Subscription) -> None:
        try:
            ready.get(timeout=self.setup_timeout + 2)
        except UnknownPartition as exc:
            subscription.close("error", str(exc))
            raise BadRequestError(f"invalid message id / cursor: {exc}",
                                  key="INVALID_CURSOR") from None
        except (Exception, gevent.Timeout) as exc:  # noqa: BLE001 - StartFailed, a timeout
            # (gevent.Timeout is a BaseException: `except Exception` let it escape to the
            # server, a plain 500 and a subscription never closed)
            subscription.close("error", str(exc))
            logger.warning("cannot open stream %s: %s", subscription.label, exc or "timeout")
            raise BackendUnavailableError(
                f"Kafka is not reachable for this stream: {exc or 'timeout'}") from None

    # -- spares -----------------------------------------------------------------------------
    def take_spare(self, key: tuple, start: Start, sink: Any, name: str
                   ) -> KafkaConsumerBridge | None:
        """A ready spare of `key`, claimed for a reader at `start`, or None."""
        for spare in self.spares:
            if spare.key == key and spare.bridge.claim(start, sink, name):
                self.spares.remove(spare)
                self.spares_taken += 1
                return spare.bridge
        return None

    def _ensure_spares(self, key: tuple, conf: dict[str, Any], topics: tuple[str, ...], *,
                       later: bool = False) -> None:
        """A stream was opened on `key`: keep its spares fresh and top them up (a key without
        one takes the place of the least recently used key's spare); with `later`, the new
        ones are made SPARE_REFILL_DELAY seconds from now (once per key)."""
        if self.max_spares <= 0 or self.closed:
            return
        now = time.monotonic()
        mine = 0
        for spare in self.spares:
            if spare.key == key:
                spare.used = now
                mine += 1
        if later and mine < self.max_spares:
            if key not in self._refills:
                self._refills.add(key)
                gevent.spawn_later(self.SPARE_REFILL_DELAY, self._refill, key, conf, topics)
            return
        per_worker = self.config.stream_readers_per_worker
        while mine < self.max_spares:
            if len(self.spares) >= self.max_spares:
                if mine or not self._drop_lru_spare(key):
                    break
            if self.reader_count() + len(self.spares) >= per_worker:
                break
            self.spares.append(_Spare(self, key, conf, topics))
            mine += 1
        if self.spares and self._spare_watch is None:
            self._spare_watch = gevent.spawn(self._expire_spares)

    def _refill(self, key: tuple, conf: dict[str, Any], topics: tuple[str, ...]) -> None:
        self._refills.discard(key)
        self._ensure_spares(key, conf, topics)

    def _drop_lru_spare(self, key: tuple | None = None) -> bool:
        """Close a spare other than the one a new reader of `key` would take: the least
        recently used of other keys first. False when there is none."""
        keep = next((s for s in self.spares
                     if s.key == key and s.bridge.spare_state == "ready"), None)
        others = [s for s in self.spares if s is not keep]
        if not others:
            return False
        self.drop_spare(min(others, key=lambda s: (s.key == key, s.used)))
        return True

    def drop_spare(self, spare: _Spare) -> None:
        if spare in self.spares:
            self.spares.remove(spare)
            spare.bridge.stop()

    def _expire_spares(self) -> None:
        try:
            while self.spares:
                gevent.sleep(min(self.idle, 1.0) / 2 or 0.05)
                now = time.monotonic()
                for spare in list(self.spares):
                    if now - spare.used >= self.idle:
                        self.drop_spare(spare)
        finally:
            self._spare_watch = None

    def start_tail(self, key: tuple, conf: dict[str, Any], topics: tuple[str, ...]) -> Fanout:
        tail = self.tails.get(key)
        if tail is None:
            tail = Fanout(self, key, conf, topics, None, live=True)
            self.tails[key] = tail
        return tail

    def promote(self, reader: Fanout) -> None:
        """A reader at the end of every partition, with no tail running: it becomes the tail."""
        group = self.catchups.get(reader.key, [])
        if reader in group:
            group.remove(reader)
            if not group:
                del self.catchups[reader.key]
        logger.debug("%r reached the end; it becomes the tail", reader)
        reader.become_tail()
        self.tails[reader.key] = reader
        self.tail_ready(reader)

    def tail_ready(self, tail: Fanout) -> None:
        for reader in list(self.catchups.get(tail.key, ())):
            if not reader.stopped and reader.position is not None:
                reader._reach_tail()

    def forget(self, fanout: Fanout) -> None:
        if self.tails.get(fanout.key) is fanout:
            del self.tails[fanout.key]
        group = self.catchups.get(fanout.key)
        if group and fanout in group:
            group.remove(fanout)
            if not group:
                del self.catchups[fanout.key]

    # -- shutdown and stats -----------------------------------------------------------------
    def close(self, kind: str = "goaway", detail: str = "the gateway is shutting down") -> None:
        """Close every stream (SSE `event: goaway`, WebSocket 1001) and stop every consumer."""
        self.closed = True
        fanouts = list(self.tails.values()) + [f for group in self.catchups.values()
                                               for f in group]
        for fanout in fanouts:
            subscribers = list(fanout.subscribers)
            fanout.stop()
            for subscription in subscribers:
                subscription.close(kind, detail)
        for reader in list(self.readers):
            reader.stop()
            reader.subscription.close(kind, detail)
        for spare in list(self.spares):
            self.drop_spare(spare)
        self.pages.clear()
        if self._stats_greenlet is not None:
            self._stats_greenlet.kill(block=False)

    def stats(self) -> dict[str, int]:
        catchups = [f for group in self.catchups.values() for f in group]
        return {
            "tails": len(self.tails),
            "readers": len(catchups) + len(self.readers),
            "subscriptions": sum(len(t.subscribers) for t in self.tails.values())
            + sum(len(f.subscribers) for f in catchups) + len(self.readers),
            "readers_started": self.readers_started,
            "spares": len(self.spares),
            "spares_ready": sum(1 for s in self.spares if s.bridge.spare_state == "ready"),
            "spares_taken": self.spares_taken,
            **self.pages.stats(),
        }

    def _log_stats(self, interval: float) -> None:
        from greenlet import greenlet
        while True:
            gevent.sleep(interval)
            gc.collect()   # count live greenlets, not garbage awaiting collection
            greenlets = sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet))
            logger.info("stream stats pid=%d greenlets=%d rss_kib=%d %s", os.getpid(), greenlets,
                        _rss_kib(), " ".join(f"{k}={v}" for k, v in self.stats().items()))


def _rss_kib() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return -1
