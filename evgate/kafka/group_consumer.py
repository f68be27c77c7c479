"""A consumer-group member with manual commits, on its own native thread: the kafka endpoint's
`open_group_stream` (evgate/core/spi.py `GroupStream`; the webhook entrypoint uses it).

Unlike the shared fan-out consumers of SSE/WebSocket, each webhook subscription is its own
consumer group (group id = subscription id): several workers and nodes run a member each and
Kafka gives every partition to exactly one of them. Offsets are committed only for records the
hub committed (`commit`, after delivery or dead-lettering), so a crash re-delivers, never skips (at-least-once).

Threading (docs/architecture.md, "Runtime rules"): the Consumer is touched only by its own OS
thread, which loops `poll(0.1)` then drains `consume(n, 0)`, hands each batch to the hub with
`HubHandoff.call` as `GroupItem`s (evgate/core/stream.py; their message built on the hub by
the one record -> Message conversion, kafka/records.py), commits what the hub committed, and pauses every assigned partition
while more than `max_outstanding` records are handed over but not finished (`release`) — a
slow receiver stops the fetching instead of growing memory. Rebalance callbacks run inside
`poll` on that thread: on revoke, delivered offsets are committed synchronously before the
partitions go, and the hub is told to drop what it still holds for them (the new owner
re-delivers from the committed offset).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from gevent import Timeout
from gevent.event import AsyncResult

from ..core.stream import GroupItem
from ..observability import metrics
from .client_config import common_config, mask
from .records import record_to_message
from .threads import HubHandoff, HubLogger, native_lock, start_native_thread

logger = logging.getLogger(__name__)

TP = tuple[str, int]

#: Commit errors after which the offsets are not ours to commit any more (a rebalance took
#: the partitions): drop them, the new owner re-delivers from the last committed offset.
_LOST_OWNERSHIP = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                   KafkaError.UNKNOWN_MEMBER_ID, KafkaError.FENCED_INSTANCE_ID,
                   KafkaError._ASSIGNMENT_LOST, KafkaError.STALE_MEMBER_EPOCH,
                   KafkaError.UNKNOWN_TOPIC_OR_PART}


def group_consumer_config(endpoint_conf: dict[str, Any], config: Any, group_id: str
                          ) -> dict[str, Any]:
    """librdkafka properties of a webhook subscription's group member."""
    consumer = endpoint_conf.get("consumer") or {}
    reset = str(consumer.get("autoOffsetReset") or "latest").lower()
    conf = common_config(endpoint_conf, config)
    conf.update({
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest" if reset == "earliest" else "latest",
        # A killed worker's partitions move to a live member after this long (broker minimum
        # 6 s); the default 45 s would stall its partitions for that long.
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 2000,
        # Incremental rebalancing: when a member dies (SIGKILL) and its replacement joins,
        # only the dead member's partitions wait for its session timeout; with the eager
        # default every member gave up every partition until then (measured: the whole
        # subscription paused ~9.3 s, the survivor's partitions included).
        "partition.assignment.strategy": "cooperative-sticky",
        "fetch.wait.max.ms": 100,   # librdkafka's 500 ms default adds latency (docs/architecture.md)
        "queued.max.messages.kbytes": 8192,
    })
    return conf


def group_item(record: Any, generation: int) -> GroupItem:
    """A fetched record as the hub gets it: the record as stored (for a verbatim DLQ copy) and
    its message, built on first use by the one conversion (records.py), id `topic@partition#offset`."""
    return GroupItem(record.topic(), record.partition(), record.offset(), generation,
                     key=record.key(), value=record.value(), headers=record.headers(),
                     source=record, build=record_to_message)


class GroupConsumer:
    """One consumer-group member (a `GroupStream`). Callbacks run on the hub: `on_records`
    gets a list of `GroupItem`s (each to `commit` or `release` once); `on_revoked` the
    (topic, partition) pairs taken away; `on_error` a text to log."""

    POLL_TIMEOUT = 0.1
    BATCH = 500
    COMMIT_RETRY_S = 1.0

    def __init__(self, conf: dict[str, Any], topics: Sequence[str], *, name: str,
                 on_records: Callable[[list[GroupItem]], None],
                 on_revoked: Callable[[list[TP]], None],
                 on_error: Callable[[str], None] | None = None,
                 max_outstanding: int = 1000):
        self.name = name
        self.topics = list(topics)
        self._handoff = HubHandoff()
        full = dict(conf)
        full.setdefault("client.id", f"evgate-{name}-{os.getpid()}")
        self._safe_conf = mask(full)
        full["error_cb"] = self._on_error_thread
        self._consumer = Consumer(full, logger=HubLogger(self._handoff, "evgate.kafka.librdkafka"))
        self._on_records = on_records
        self._on_revoked = on_revoked
        self._on_error = on_error or (lambda text: logger.warning("%s: %s", name, text))
        self.max_outstanding = max(1, max_outstanding)
        self._lock = native_lock()
        self._outstanding = 0
        self._pending: dict[TP, int] = {}     # tp -> next offset to commit (delivered + 1)
        self._generation: dict[TP, int] = {}  # tp -> generation of its current assignment
        self._next_generation = 1
        self._assignment: list[TopicPartition] = []
        self._paused = False
        self._running = True
        self._closed = AsyncResult()
        self._last_commit_failure = 0.0
        #: metrics: offsets committed by this member, the lag gauge's label and last sample
        self._committed: dict[TP, int] = {}
        self._lag_label = str(conf.get("group.id") or name)
        self._lag_sampled = 0.0
        start_native_thread(self._loop)
        logger.info("group consumer %s started on %s: %s", name, self.topics, self._safe_conf)

    def __repr__(self) -> str:
        return f"<GroupConsumer {self.name} topics={self.topics}>"

    # -- called on the hub ------------------------------------------------------------------
    def mark_delivered(self, tp: TP, offset: int, generation: int) -> None:
        """Record `offset` of `tp` as delivered; committed (as offset + 1) by the thread soon.
        Ignored when the partition was revoked since the record was handed over."""
        with self._lock:
            if self._generation.get(tp) != generation:
                return
            if offset + 1 > self._pending.get(tp, -1):
                self._pending[tp] = offset + 1

    def commit(self, item: GroupItem) -> None:
        """`item` is settled: commit its partition up to it (soon, on the thread); one place
        in the flow control is free again."""
        self.mark_delivered(item.partition_key, item.offset, item.generation)
        self.release(1)

    def release(self, count: int = 1) -> None:
        """`count` handed-over records are finished (delivered, dropped or discarded)."""
        with self._lock:
            self._outstanding = max(0, self._outstanding - count)

    @property
    def outstanding(self) -> int:
        return self._outstanding

    def close(self, timeout: float = 10.0) -> None:
        """Commit what was delivered, leave the group, stop the thread. Must not raise."""
        if not self._running:
            return
        self._running = False
        try:
            self._closed.get(timeout=timeout)
        except (Exception, Timeout):  # noqa: BLE001 - Timeout is a BaseException
            logger.warning("group consumer %s did not close cleanly", self.name, exc_info=True)

    # -- on the native thread ---------------------------------------------------------------
    def _loop(self) -> None:
        consumer = self._consumer
        try:
            consumer.subscribe(self.topics, on_assign=self._assigned, on_revoke=self._revoked,
                               on_lost=self._revoked)
            while self._running:
                self._commit_pending()
                self._flow_control()
                self._sample_lag()
                msg = consumer.poll(self.POLL_TIMEOUT)
                if msg is None or not self._running:
                    continue
                batch = [msg]
                if not self._paused:
                    batch += consumer.consume(self.BATCH, 0)
                self._hand_over(batch)
            self._commit_pending(final=True)
            consumer.close()
            self._handoff.call(metrics.set_consumer_lag, self._lag_label, 0)
            self._handoff.call(self._closed.set, None)
        except BaseException as exc:  # noqa: BLE001 - reported on the hub, the thread ends
            try:
                consumer.close()
            except Exception:  # noqa: BLE001
                pass
            self._handoff.call(self._closed.set_exception, exc)
            self._handoff.call(self._on_error, f"consumer thread stopped: {exc!r}")

    def _hand_over(self, batch: list[Any]) -> None:
        records: list[GroupItem] = []
        with self._lock:
            for msg in batch:
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        self._handoff.call(self._on_error, str(err))
                    continue
                generation = self._generation.get((msg.topic(), msg.partition()))
                if generation is None:  # fetched before a revoke; the new owner has it
                    continue
                records.append(group_item(msg, generation))
            self._outstanding += len(records)
        if records:
            self._handoff.call(self._on_records, records)

    def _flow_control(self) -> None:
        """Pause fetching while the hub holds too many records; resume at half."""
        if not self._assignment:
            return
        outstanding = self._outstanding
        try:
            if not self._paused and outstanding >= self.max_outstanding:
                self._consumer.pause(self._assignment)
                self._paused = True
            elif self._paused and outstanding <= self.max_outstanding // 2:
                self._consumer.resume(self._assignment)
                self._paused = False
        except KafkaException as exc:
            self._handoff.call(self._on_error, f"pause/resume failed: {exc}")

    def _commit_pending(self, final: bool = False, only: set[TP] | None = None) -> None:
        if not self._pending:
            return
        if not final and only is None and \
                time.monotonic() - self._last_commit_failure < self.COMMIT_RETRY_S:
            return
        with self._lock:
            taken = {tp: off for tp, off in self._pending.items() if only is None or tp in only}
            for tp in taken:
                del self._pending[tp]
        if not taken:
            return
        offsets = [TopicPartition(t, p, off) for (t, p), off in taken.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
            self._committed.update(taken)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            code = err.code() if isinstance(err, KafkaError) else None
            if code == KafkaError._NO_OFFSET:
                return
            if code in _LOST_OWNERSHIP:
                self._handoff.call(self._on_error, f"commit dropped (partitions moved): {err}")
                return
            with self._lock:  # keep them (newer marks win) and try again a little later
                for tp, off in taken.items():
                    if off > self._pending.get(tp, -1) and tp in self._generation:
                        self._pending[tp] = off
            self._last_commit_failure = time.monotonic()
            self._handoff.call(self._on_error, f"commit failed, will retry: {err}")

    LAG_SAMPLE_S = 2.0

    def _sample_lag(self) -> None:
        """Every LAG_SAMPLE_S, this member's lag (cached high watermarks minus committed
        offsets: no broker round trip) to the hub's gauge (evgate/observability/metrics.py)."""
        now = time.monotonic()
        if now - self._lag_sampled < self.LAG_SAMPLE_S:
            return
        self._lag_sampled = now
        # paused partitions are not fetched, so their cached watermark would go stale
        lag = metrics.sample_lag(self._consumer, list(self._assignment), self._committed,
                                 fresh=self._paused)
        self._handoff.call(metrics.set_consumer_lag, self._lag_label, lag)

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        with self._lock:
            for tp in partitions:
                self._generation[(tp.topic, tp.partition)] = self._next_generation
            self._next_generation += 1
        # cooperative protocol: `partitions` is what this rebalance adds; what the member
        # already owns stays assigned (and keeps being fetched) through the rebalance
        known = {(tp.topic, tp.partition) for tp in self._assignment}
        added = [tp for tp in partitions if (tp.topic, tp.partition) not in known]
        consumer.incremental_assign(partitions)
        self._assignment = self._assignment + added
        # librdkafka keeps a partition's pause flag across a rebalance: a partition this
        # member had paused (flow control) and gets back would stay paused for good, and
        # delivery would stall with nothing outstanding (seen in bench/webhook.py with 10
        # subscriptions on 2 workers). New partitions follow the member's flow control: paused
        # while it is paused (resumed with the rest), explicitly resumed otherwise.
        try:
            if self._paused:
                consumer.pause(partitions)
            else:
                consumer.resume(partitions)
        except KafkaException as exc:
            self._handoff.call(self._on_error, f"pause/resume after assignment failed: {exc}")
        self._handoff.call(logger.info, "group consumer %s assigned %s", self.name,
                           [f"{tp.topic}[{tp.partition}]" for tp in partitions])

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Only the partitions this rebalance takes away (cooperative protocol); the client
        unassigns them incrementally once this returns."""
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._commit_pending(final=True, only=revoked)
        with self._lock:
            for tp in revoked:
                self._generation.pop(tp, None)
                self._pending.pop(tp, None)
        self._assignment = [tp for tp in self._assignment
                            if (tp.topic, tp.partition) not in revoked]
        self._handoff.call(self._on_revoked, sorted(revoked))

    def _on_error_thread(self, error: KafkaError) -> None:
        self._handoff.call(self._on_error, str(error))

    def generation_of(self, tp: TP) -> int | None:
        return self._generation.get(tp)
