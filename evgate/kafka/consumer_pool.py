"""The per-worker consumer pool: shared live tails, private catch-up readers, group readers.

- SharedTail: ONE consumer per (cluster config, topic set) reading the live end. Every client
  that starts at the tail (no cursor) is a subscriber; each record becomes one `StreamItem`
  (cursor and frame cache included) offered to every subscriber, so a frame is encoded once per
  format, not once per client. When its last subscriber leaves, the tail stops after
  `TAIL_LINGER` seconds (a reconnecting client finds it still running).
- CatchUp: a client resuming from a cursor that is not the tail's current position reads on its
  own consumer (assign() to cursor + 1, no group). After each batch it tries to join the tail:
  when its position is at or past the tail's on every partition, it joins; records the tail
  hands out that the client already has are skipped (per partition offset floor) and, until the
  tail passes the floor, the client's ids are rewritten so they never go backwards. If no tail
  exists when it reaches the end of the partitions, it starts one at its own position. No gap,
  no duplicate (tests/integration/test_sse.py::test_resume_*).
- GroupReader: clients sending X-Gravitee-Client-Identifier share a consumer group; each gets
  its own group member, Kafka splits the partitions, committed offsets resume it.

Everything here runs on the hub; the consumers' blocking calls run on their native threads
(evgate/kafka/consumer.py).
"""
from __future__ import annotations

import gc
import logging
import os
from typing import Any, Mapping

import gevent
from gevent.event import AsyncResult

from ..config import Config
from ..endpoints.subscription import StreamItem, Subscription
from ..errors import BackendUnavailableError
from . import cursor as cursors
from .client_config import common_config
from .consumer import KafkaConsumerBridge, Start

logger = logging.getLogger(__name__)

Position = dict[tuple[str, int], int]

TAIL_LINGER = 0.5


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


class SharedTail:
    """One consumer at the live end of a topic set, fanned out to many subscriptions."""

    def __init__(self, pool: "ConsumerPool", key: tuple, conf: dict[str, Any],
                 topics: tuple[str, ...], start_position: Position | None = None):
        self.pool = pool
        self.key = key
        self.topics = topics
        self.subscribers: set[Subscription] = set()
        self.position: Position | None = None
        self.ready = AsyncResult()
        self.stopped = False
        start = (Start("tail", topics) if start_position is None
                 else Start("offsets", topics, dict(start_position)))
        self.bridge = KafkaConsumerBridge(conf, start, self, name=f"tail{pool.next_id()}",
                                          setup_timeout=pool.setup_timeout, batch=pool.batch)

    def __repr__(self) -> str:
        return f"<SharedTail {','.join(self.topics)} subscribers={len(self.subscribers)}>"

    # -- sink (hub) -------------------------------------------------------------------------
    def on_ready(self, position: Position) -> None:
        self.position = position
        self.ready.set(True)
        self.pool.tail_ready(self)

    def on_start_failed(self, error: Exception) -> None:
        self.stopped = True
        self.pool.forget_tail(self)
        self.ready.set_exception(error)

    def on_batch(self, items: list[StreamItem], position: Position, eof: bool) -> None:
        # per subscriber, the whole batch: the SSE fast path writes it in one syscall
        for subscription in list(self.subscribers):
            subscription.offer_many(items)
        self.position = position

    def on_lost(self, reason: str) -> None:
        logger.error("kafka lost under %r: %s; closing its %d streams (clients resume by id)",
                     self, reason, len(self.subscribers))
        self.stop()
        for subscription in list(self.subscribers):
            subscription.close("error", f"Kafka is unreachable: {reason}")

    # -- membership -------------------------------------------------------------------------
    def add(self, subscription: Subscription, floor: Position | None = None) -> None:
        if floor is not None and self.position is not None and not cursors.covers(self.position,
                                                                                 floor):
            subscription.transform = _FloorTransform(subscription, floor)
        else:
            subscription.transform = None
        self.subscribers.add(subscription)
        subscription.add_close_callback(self._remove)

    def _remove(self, subscription: Subscription) -> None:
        self.subscribers.discard(subscription)
        if not self.subscribers and not self.stopped:
            gevent.spawn_later(TAIL_LINGER, self._stop_if_unused)

    def _stop_if_unused(self) -> None:
        if not self.subscribers and not self.stopped:
            self.stop()

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.pool.forget_tail(self)
            self.bridge.stop()


class _FloorTransform:
    """Per-client view of a shared tail for a client that joined ahead of it."""

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
        if merged == position:       # the tail has passed the floor: share its frames again
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


class CatchUp(_Reader):
    def __init__(self, pool: "ConsumerPool", subscription: Subscription, key: tuple,
                 conf: dict[str, Any], topics: tuple[str, ...], position: Position):
        super().__init__(pool, subscription)
        self.key, self.conf, self.topics = key, conf, topics
        self.bridge = KafkaConsumerBridge(conf, Start("offsets", topics, position), self,
                                          name=f"catchup{pool.next_id()}",
                                          setup_timeout=pool.setup_timeout, batch=pool.batch)

    def on_batch(self, items: list[StreamItem], position: Position, eof: bool) -> None:
        super().on_batch(items, position, eof)
        if not self.stopped and self.subscription.closed is None:
            self.try_join(eof)

    def try_join(self, at_end: bool = False) -> None:
        tail = self.pool.tails.get(self.key)
        if tail is None:
            if at_end:
                self.pool.start_tail(self.key, self.conf, self.topics, self.position)
            return
        if tail.position is None or tail.stopped:
            return
        if set(tail.position) != set(self.position) or not cursors.covers(self.position,
                                                                          tail.position):
            return
        logger.debug("%r caught up; joining %r", self.subscription, tail)
        tail.add(self.subscription, floor=dict(self.position))
        self.stop()


class GroupReader(_Reader):
    def __init__(self, pool: "ConsumerPool", subscription: Subscription, conf: dict[str, Any],
                 topics: tuple[str, ...], group_id: str, qos: str):
        super().__init__(pool, subscription)
        conf = dict(conf)
        if qos != "at-least-once":
            conf["enable.auto.offset.store"] = True   # auto: offsets stored as fetched
        self.bridge = KafkaConsumerBridge(conf, Start("group", topics, group_id=group_id), self,
                                          name=f"group{pool.next_id()}",
                                          setup_timeout=pool.setup_timeout, batch=pool.batch)
        if qos == "at-least-once":
            bridge = self.bridge
            subscription.on_ack = lambda item: bridge.store_offsets(
                [(item.partition_key[0], item.partition_key[1], item.offset)])


class ConsumerPool:
    """Per worker (created lazily by the runtime after the fork)."""

    def __init__(self, config: Config):
        self.config = config
        self.pid = os.getpid()
        self.setup_timeout = config.kafka_consumer_setup_timeout_ms / 1000
        # A batch is offered to every client at once: keep it well under a client's buffer,
        # or even fast clients would overflow within one batch.
        self.batch = max(1, min(500, config.stream_client_buffer // 4))
        self.tails: dict[tuple, SharedTail] = {}
        self.readers: set[_Reader] = set()
        self._ids = 0
        self.closed = False
        self._stats_greenlet = None
        if config.stream_stats_interval_ms:
            self._stats_greenlet = gevent.spawn(self._log_stats,
                                                config.stream_stats_interval_ms / 1000)

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    # -- opening streams --------------------------------------------------------------------
    def subscribe(self, endpoint_conf: Mapping[str, Any], topics: list[str], *,
                  position: Position | None, group_id: str | None, qos: str, capacity: int,
                  label: str, auto_offset_reset: str = "latest") -> Subscription:
        """A ready subscription, or BackendUnavailableError when Kafka cannot be reached."""
        if self.closed:
            raise BackendUnavailableError("the gateway is stopping; retry on another node.")
        conf = consumer_config(endpoint_conf, self.config)
        topic_set = tuple(sorted(set(topics)))
        key = _key(conf, topic_set)
        if group_id is not None:
            subscription = Subscription(capacity, label)
            conf["auto.offset.reset"] = auto_offset_reset
            reader: _Reader = GroupReader(self, subscription, conf, topic_set, group_id, qos)
            self.readers.add(reader)
            self._wait(reader.ready, subscription)
            return subscription
        tail = self.tails.get(key)
        if position is None or (tail is not None and tail.position == position):
            if tail is None:
                tail = self.start_tail(key, conf, topic_set)
            subscription = Subscription(capacity, label)
            self._wait(tail.ready, subscription)
            subscription.start_cursor = subscription.last_cursor = cursors.encode(tail.position)
            tail.add(subscription)
            return subscription
        subscription = Subscription(capacity, label, start_cursor=cursors.encode(position))
        reader = CatchUp(self, subscription, key, conf, topic_set, position)
        self.readers.add(reader)
        self._wait(reader.ready, subscription)
        return subscription

    def _wait(self, ready: AsyncResult, subscription: Subscription) -> None:
        try:
            ready.get(timeout=self.setup_timeout + 2)
        except Exception as exc:  # noqa: BLE001 - StartFailed, gevent.Timeout
            subscription.close("error", str(exc))
            logger.warning("cannot open stream %s: %s", subscription.label, exc or "timeout")
            raise BackendUnavailableError(
                f"Kafka is not reachable for this stream: {exc or 'timeout'}") from None

    def start_tail(self, key: tuple, conf: dict[str, Any], topics: tuple[str, ...],
                   start_position: Position | None = None) -> SharedTail:
        tail = self.tails.get(key)
        if tail is None:
            tail = SharedTail(self, key, conf, topics, start_position)
            self.tails[key] = tail
        return tail

    def tail_ready(self, tail: SharedTail) -> None:
        for reader in list(self.readers):
            if isinstance(reader, CatchUp) and reader.key == tail.key and not reader.stopped:
                reader.try_join()

    def forget_tail(self, tail: SharedTail) -> None:
        if self.tails.get(tail.key) is tail:
            del self.tails[tail.key]

    # -- shutdown and stats -----------------------------------------------------------------
    def close(self, kind: str = "goaway", detail: str = "the gateway is shutting down") -> None:
        """Close every stream (SSE `event: goaway`, WebSocket 1001) and stop every consumer."""
        self.closed = True
        for tail in list(self.tails.values()):
            subscribers = list(tail.subscribers)
            tail.stop()
            for subscription in subscribers:
                subscription.close(kind, detail)
        for reader in list(self.readers):
            reader.stop()
            reader.subscription.close(kind, detail)
        if self._stats_greenlet is not None:
            self._stats_greenlet.kill(block=False)

    def stats(self) -> dict[str, int]:
        return {
            "tails": len(self.tails),
            "readers": len(self.readers),
            "subscriptions": sum(len(t.subscribers) for t in self.tails.values())
            + len(self.readers),
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
