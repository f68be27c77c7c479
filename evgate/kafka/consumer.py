"""One confluent-kafka Consumer on its own native OS thread, handing batches to the gevent hub.

The thread does every blocking librdkafka call: the metadata and watermark look-ups that fix
the start position, `poll(t)` for the first record, then `consume(n, 0)` to drain what is
already fetched (poll-then-drain: `consume(n, t)` would wait for n records or t). Each batch is
turned into `StreamItem`s on the thread (the cursor after the record, and the record, which
evgate/kafka/records.py turns into the message webhooks get too, on the hub when first asked)
and handed to the hub with `run_callback_threadsafe`; the sink's methods run on the hub only.
Never on the hub, never in gevent's threadpool (docs/architecture.md, "Runtime rules").

Start positions (`Start`):
- tail:    every partition of the topics at its high watermark, as explicit offsets, so the
           first cursor already names a concrete position;
- offsets: a cursor's position + 1 on each partition (partitions the cursor does not name start
           at the beginning), with partition EOF events so the owner knows it caught up;
- group:   `subscribe()` in a consumer group (clients sharing X-Gravitee-Client-Identifier);
           Kafka splits the partitions among the members and committed offsets resume it.
- spare:   no position yet: the thread fetches the topics' metadata and watermarks (which
           connects it to the partition leaders), then waits until the pool hands it a real
           start (`claim`, an offsets start) or stops it. A new catch-up reader that takes a
           spare skips that connection set-up (~60 ms on a busy box, docs/benchmarks.md).
"""
from __future__ import annotations

import binascii
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import repeat
from operator import is_not, methodcaller
from typing import Any, Protocol

from confluent_kafka import (OFFSET_END, Consumer, KafkaError, KafkaException, Message,
                             TopicPartition)

from ..core.stream import StreamItem
from .client_config import mask
from .cursor import URLSAFE, encode_offsets
from .records import record_to_message
from .threads import HubHandoff, HubLogger, native_lock, start_native_thread

logger = logging.getLogger(__name__)

# a confluent-kafka Message's getters, unbound: `map` calls them without a method look-up
# per record (4x cheaper than methodcaller); other record types (tests) by name
_GETTERS = {Message: (Message.error, Message.topic, Message.partition, Message.offset,
                      Message.value)}
_BY_NAME = tuple(map(methodcaller, ("error", "topic", "partition", "offset", "value")))


@dataclass
class Start:
    kind: str                                  # tail | offsets | group | spare
    topics: tuple[str, ...]
    position: dict[tuple[str, int], int] = field(default_factory=dict)
    group_id: str | None = None


class Sink(Protocol):
    def on_ready(self, position: dict[tuple[str, int], int]) -> None: ...
    def on_start_failed(self, error: Exception) -> None: ...
    def on_batch(self, items: list[StreamItem], position: dict[tuple[str, int], int],
                 eof: set[tuple[str, int]]) -> None: ...
    def on_lost(self, reason: str) -> None: ...


class StartFailed(Exception):
    """The consumer could not reach Kafka or the topics when it started."""


class UnknownPartition(StartFailed):
    """A start position (a client's cursor) names a partition the topic does not have."""


def _load_malloc_trim() -> Any:
    try:
        import ctypes
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):   # not glibc
        return None


_malloc_trim = _load_malloc_trim()


def give_memory_back() -> None:
    """Return freed heap to the OS (glibc keeps it in per-thread arenas otherwise: a worker
    whose readers are gone would keep their peak size)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _signal(lock: Any) -> None:
    """Release a native lock that a thread waits on as a wake-up signal (held while there is
    nothing to signal), unless it is released already."""
    if lock.locked():
        try:
            lock.release()
        except RuntimeError:     # released meanwhile
            pass


class KafkaConsumerBridge:
    POLL_TIMEOUT = 0.1
    BATCH = 500
    # Batches handed to the hub and not yet processed. Kept low so that the clients woken by
    # one batch drain their buffers before the next batch is offered to them.
    MAX_PENDING_BATCHES = 2
    # seconds a held-back thread waits for the hub's nudge before it looks again by itself
    HELD_BACK_WAIT = 0.05
    # seconds a spare's partition list stays good for the reader it becomes, and the age at
    # which a waiting spare looks it up again (a topic's partitions can be added)
    METADATA_TTL = 10.0
    METADATA_REFRESH = 5.0

    def __init__(self, conf: dict[str, Any], start: Start, sink: Sink, *, name: str,
                 setup_timeout: float = 5.0, batch: int | None = None):
        self.name = name
        self.batch = batch or self.BATCH
        self.start_spec = start
        self.sink = sink
        self.setup_timeout = setup_timeout
        self._handoff = HubHandoff()
        full = dict(conf)
        full.setdefault("client.id", f"evgate-{name}-{os.getpid()}")
        if start.kind == "group":
            full["group.id"] = start.group_id
        else:
            # assign() needs no group, but librdkafka wants a group.id; nothing is committed.
            full.setdefault("group.id", f"evgate-nogroup-{os.getpid()}")
            full["enable.auto.commit"] = False
            # a spare becomes an offsets reader
            full["enable.partition.eof"] = start.kind in ("offsets", "spare")
        self._safe_conf = mask(full)
        full["error_cb"] = self._on_error
        self._consumer = Consumer(full, logger=HubLogger(self._handoff, "evgate.kafka.librdkafka"))
        self._commands: deque[tuple[str, Any]] = deque()
        self._running = True
        self._sent = 0        # batches handed to the hub (thread side)
        self.processed = 0    # batches the hub processed (hub side)
        self._lost_reported = False
        self.position: dict[tuple[str, int], int] = {}
        self._parts: list[str] | None = None
        #: (when, topics, partitions) of the last metadata lookup (`_known_partitions`)
        self._known: tuple[float, tuple[str, ...], list[tuple[str, int]]] | None = None
        self._slots: dict[tuple[str, int], int] = {}
        self._paused = False
        # released by the hub when a held-back thread may go on (unpaused, a batch processed,
        # a command queued, stopped): the thread waits on it instead of waking every 2 ms to
        # look at a flag (a GIL round trip each time, per paused reader)
        self._nudge = native_lock()
        self._nudge.acquire()
        #: set on the hub: the thread gives freed memory back after closing the consumer
        self.trim_on_close = False
        #: a spare's state: warming (thread) -> ready (thread) -> claimed (hub) | dead (thread)
        self.spare_state = "warming" if start.kind == "spare" else None
        self._wake = native_lock()
        if start.kind == "spare":
            self._wake.acquire()      # released by claim() or stop()
        start_native_thread(self._loop)
        logger.debug("kafka consumer %s starting (%s): %s", name, start.kind, self._safe_conf)

    def __repr__(self) -> str:
        return f"<KafkaConsumerBridge {self.name} {self.start_spec.kind} {self.start_spec.topics}>"

    # -- hub side ---------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        """Set on the hub: the thread stops fetching (flow control of catch-up readers; what
        librdkafka prefetched meanwhile is bounded by queued.max.messages.kbytes)."""
        return self._paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self._paused = value
        if not value:
            self._wake_thread()

    def _wake_thread(self) -> None:
        _signal(self._nudge)

    def stop(self) -> None:
        """Ask the thread to close the consumer (commits stored offsets in a group)."""
        self._running = False
        self._release_spare()
        self._wake_thread()

    def claim(self, start: Start, sink: Sink, name: str) -> bool:
        """A ready spare becomes a reader at `start` (an offsets start) for `sink`; False when
        it is not ready (still connecting, failed or stopped)."""
        if self.spare_state != "ready" or not self._running or start.kind != "offsets":
            return False
        self.start_spec, self.sink, self.name = start, sink, name
        self.spare_state = "claimed"
        self._release_spare()
        return True

    def _release_spare(self) -> None:
        _signal(self._wake)

    def store_offsets(self, offsets: list[tuple[str, int, int]]) -> None:
        """At-least-once: mark records as delivered (committed by the auto-commit timer)."""
        self._commands.append(("store", offsets))
        self._wake_thread()

    # -- native thread ----------------------------------------------------------------------
    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's error_cb, served by poll() on this thread. Losing Kafka is reported
        once as `_ALL_BROKERS_DOWN`: every known broker's connection failed (a stopped broker
        resets its connections, so this comes within a second; single transport errors and
        one broker of many going down are retried by librdkafka and only logged). A network
        that silently drops packets is noticed only when requests time out
        (`socket.timeout.ms`, 60 s by default)."""
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._AUTHENTICATION) \
                or error.fatal():
            if not self._lost_reported and self._running:
                self._lost_reported = True
                self._handoff.call(self.sink.on_lost, error.str())
        else:
            self._handoff.call(logger.debug, "kafka consumer %s: %s", self.name, str(error))

    def _setup(self) -> dict[tuple[str, int], int]:
        spec = self.start_spec
        consumer = self._consumer
        if spec.kind == "group":
            # Metadata first, so an unreachable cluster fails the stream with 503 now.
            self._partitions(spec.topics)
            consumer.subscribe(list(spec.topics))
            return {}
        partitions = self._known_partitions(spec) or self._partitions(spec.topics)
        unknown = sorted(set(spec.position) - set(partitions))
        if spec.kind == "offsets" and unknown:
            raise UnknownPartition("the cursor names partition(s) the topic does not have: "
                                   + ", ".join(f"{t}@{p}" for t, p in unknown))
        assignment, position = [], {}
        for topic, partition in partitions:
            key = (topic, partition)
            if spec.kind == "tail":
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                            timeout=self.setup_timeout)
                next_offset = high if high >= 0 else OFFSET_END
            else:
                next_offset = spec.position.get(key, -1) + 1
            assignment.append(TopicPartition(topic, partition, next_offset))
            position[key] = next_offset - 1
        consumer.assign(assignment)
        return position

    def _known_partitions(self, spec: Start) -> list[tuple[str, int]] | None:
        """The partitions a spare looked up while it waited, for the reader it became: fresh
        (at most METADATA_TTL seconds old), the same topics, and every partition the cursor
        names among them; else None (Kafka is asked, one metadata round trip more before
        the first fetch of a new position)."""
        known, self._known = self._known, None
        if known is None or spec.kind != "offsets":
            return None
        when, topics, partitions = known
        if time.monotonic() - when > self.METADATA_TTL or topics != tuple(spec.topics) \
                or not set(spec.position) <= set(partitions):
            return None
        return partitions

    def _partitions(self, topics: tuple[str, ...]) -> list[tuple[str, int]]:
        found = []
        for topic in topics:
            md = self._consumer.list_topics(topic=topic, timeout=self.setup_timeout)
            meta = md.topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                reason = meta.error if meta is not None else "no metadata"
                raise StartFailed(f"topic {topic!r} is not available: {reason}")
            found.extend((topic, p) for p in sorted(meta.partitions))
        self._known = (time.monotonic(), tuple(topics), found)
        return found

    def _wait_as_spare(self) -> bool:
        """Connect, then wait to be claimed (True) or stopped (False)."""
        try:
            for topic, partition in self._partitions(self.start_spec.topics):
                self._consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                     timeout=self.setup_timeout)
        except (KafkaException, StartFailed, ValueError, RuntimeError) as exc:
            self.spare_state = "dead"
            self._handoff.call(self.sink.on_start_failed, StartFailed(str(exc)))
            return False
        self.spare_state = "ready"
        while self._running:
            if self._wake.acquire(timeout=1.0):
                break
            self._consumer.poll(0)     # serves error_cb (a lost cluster) while waiting
            if self._known is not None \
                    and time.monotonic() - self._known[0] > self.METADATA_REFRESH:
                try:
                    self._partitions(self.start_spec.topics)
                except (KafkaException, StartFailed, ValueError, RuntimeError):
                    self._known = None   # the claimed reader asks Kafka again
        return self._running and self.spare_state == "claimed"

    def _loop(self) -> None:
        consumer = self._consumer
        if self.start_spec.kind == "spare" and not self._wait_as_spare():
            # never fetched: nothing worth a malloc_trim (tens of ms of CPU on a big heap)
            self._running = False
            self._close_quietly()
            return
        try:
            position = self._setup()
        except (KafkaException, StartFailed, ValueError, RuntimeError) as exc:
            self._running = False
            self._close_quietly()
            error = exc if isinstance(exc, StartFailed) else StartFailed(str(exc))
            self._handoff.call(self.sink.on_start_failed, error)
            return
        self.position = dict(position)
        self._handoff.call(self.sink.on_ready, dict(position))
        eof_kind = self.start_spec.kind == "offsets"
        try:
            while self._running:
                self._run_commands()
                if self._sent - self.processed >= self.MAX_PENDING_BATCHES or self._paused:
                    # the hub (or a client) is behind: do not pile up; woken by the hub
                    # (`_wake_thread`), the timeout only a safety net
                    self._nudge.acquire(timeout=self.HELD_BACK_WAIT)
                    continue
                first = consumer.poll(self.POLL_TIMEOUT)
                if first is None:
                    continue
                records = [first]
                if self.batch > 1:
                    records.extend(consumer.consume(self.batch - 1, 0))
                items, eof = self._items(records, eof_kind)
                if items or eof:
                    self._sent += 1
                    self._handoff.call(self._deliver, items, dict(self.position), eof)
        except BaseException as exc:  # noqa: BLE001 - reported on the hub, the thread ends
            self._handoff.call(self.sink.on_lost, f"consumer failed: {exc}")
        finally:
            self._run_commands()
            self._close_quietly()
            if self.trim_on_close:
                give_memory_back()

    def _items(self, records: list[Any], eof_kind: bool
               ) -> tuple[list[StreamItem], set[tuple[str, int]]]:
        """The batch's items, and the partitions whose end it reached (offsets starts)."""
        eof: set[tuple[str, int]] = set()
        if len(self.position) == 1 and records:
            getters = _GETTERS.get(type(records[0]), _BY_NAME)
            errors = list(map(getters[0], records))
            # `is not`: a KafkaError compared with None by `==` raises
            if any(map(is_not, errors, repeat(None))):
                records = [record for record, error in zip(records, errors)
                           if error is None or self._error(record, error, eof_kind, eof)]
            return self._one_partition(records, getters), eof
        return self._records(records, eof_kind, eof), eof

    def _error(self, record: Any, error: Any, eof_kind: bool, eof: set) -> bool:
        """Note a record that is an event (a partition's end, an error); always False."""
        if error.code() == KafkaError._PARTITION_EOF:
            if eof_kind:
                eof.add((record.topic(), record.partition()))
        elif error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            self._handoff.call(logger.warning, "kafka consumer %s: %s", self.name, str(error))
        return False

    def _one_partition(self, records: list[Any], getters: tuple) -> list[StreamItem]:
        """The items of a one-partition reader's batch (no events left in it) by whole-batch
        C calls: the records' offsets and values by `map`, every cursor by one base64 pass
        (`cursors.encode_offsets`), the items by one `map` (~0.5 ms less of the GIL per
        500 records than a loop per record). A record of another partition (a consumer
        group's new assignment) takes the general path."""
        if not records:
            return []
        ((topic, partition),) = self.position
        _error, get_topic, get_partition, get_offset, get_value = getters
        if set(map(get_partition, records)) != {partition} \
                or set(map(get_topic, records)) != {topic}:
            return self._records(records, False, set())
        key = (topic, partition)
        offsets = list(map(get_offset, records))
        values = list(map(get_value, records))
        sizes = list(map(len, values)) if None not in values else [
            0 if value is None else len(value) for value in values]
        self.position[key] = offsets[-1]
        return list(map(StreamItem, repeat(None), encode_offsets(topic, partition, offsets),
                        repeat(key), offsets, records, repeat(record_to_message), sizes,
                        values))

    def _records(self, records: list[Any], eof_kind: bool, eof: set[tuple[str, int]]
                 ) -> list[StreamItem]:
        """The items of a batch, record by record (several partitions)."""
        items: list[StreamItem] = []
        position = self.position
        # the cursor text, one `topic@partition#offset` part per partition, kept sorted: only
        # the part of the record's partition changes (cursors.encode per record cost ~4 us)
        parts = self._parts
        if parts is None or len(parts) != len(position):
            keys = sorted(position)
            self._slots = {key: index for index, key in enumerate(keys)}
            parts = self._parts = [f"{t}@{p}#{position[(t, p)]}" for t, p in keys]
        slots = self._slots
        single = len(parts) == 1
        b2a, urlsafe = binascii.b2a_base64, URLSAFE
        append = items.append
        last_key = None
        for record in records:
            error = record.error()
            if error is not None:
                self._error(record, error, eof_kind, eof)
                continue
            topic, partition, offset = record.topic(), record.partition(), record.offset()
            # one key tuple per partition and batch, not per record (the ring holds them)
            if last_key is not None and last_key[1] == partition and last_key[0] == topic:
                key = last_key
            else:
                key = last_key = (topic, partition)
            position[key] = offset
            if single and key in slots:     # one partition: the cursor is its part alone
                text = f"{topic}@{partition}#{offset}"
            else:
                slot = slots.get(key)
                if slot is None:          # a partition not in the start position (groups)
                    keys = sorted(position)
                    slots = self._slots = {k: index for index, k in enumerate(keys)}
                    parts = self._parts = [f"{t}@{p}#{position[(t, p)]}" for t, p in keys]
                    single = False
                else:
                    parts[slot] = f"{topic}@{partition}#{offset}"
                text = ",".join(parts)
            # base64url without padding (cursors.encode), without its two Python wrappers
            cursor_text = b2a(text.encode(), newline=False).translate(urlsafe).rstrip(
                b"=").decode("ascii")
            # the Message is built on the hub when asked for (StreamItem.message): a JSON page
            # reads only the value and the cursor
            value = record.value()
            append(StreamItem(None, cursor_text, key, offset, record, record_to_message,
                              len(value) if value is not None else 0, value))
        return items

    def _run_commands(self) -> None:
        while self._commands:
            command, payload = self._commands.popleft()
            try:
                if command == "store":
                    self._consumer.store_offsets(offsets=[
                        TopicPartition(t, p, o + 1) for t, p, o in payload])
            except KafkaException as exc:
                self._handoff.call(logger.debug, "kafka consumer %s: %s failed: %s", self.name,
                                   command, str(exc))

    def _close_quietly(self) -> None:
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError):
            pass

    def _deliver(self, items: list[StreamItem], position: dict[tuple[str, int], int],
                 eof: set[tuple[str, int]]) -> None:
        self.processed += 1
        self._wake_thread()
        if not self._running:
            return
        try:
            self.sink.on_batch(items, position, eof)
        except Exception:  # noqa: BLE001 - one broken sink must not kill the hub callback
            logger.exception("kafka consumer %s: delivering a batch failed", self.name)
