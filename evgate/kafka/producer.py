"""One confluent-kafka Producer per worker and client configuration, polled on a native thread.

A request greenlet calls `produce_many()`, which only enqueues into librdkafka (non-blocking) and
returns a `gevent.event.AsyncResult`. The producer's own OS thread loops `poll(0.1)`; its
delivery callbacks only record the reports, and once a request's records are all reported it
joins a list that the thread hands to the hub after each poll()
with one `run_callback_threadsafe` (one hub wake-up per poll iteration, however many requests
it settled); only the hub sets the AsyncResult. The greenlet waits on it, so a 202 is answered
only once the broker acknowledged (acks=all, idempotence on). Measured on this kind of machine: 17.3k acked produces/s at 50
concurrent greenlets (docs/architecture.md, "Runtime rules").
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from functools import partial
from typing import Any, Sequence

import gevent
from confluent_kafka import KafkaError, KafkaException, Producer
from gevent.event import AsyncResult

from ..core.outcomes import Delivered, PublishFailed
from .client_config import mask
from .threads import (HubHandoff, HubLogger, RepeatLimiter, start_native_thread,
                      suppressed_note)

logger = logging.getLogger(__name__)


class ProduceError(PublishFailed):
    """The broker did not acknowledge a record: `retriable` tells whether to try again later,
    `too_large` that the broker refused its size; `code` is librdkafka's, for logs only (the
    entrypoints read the two flags, never the code: evgate/core/outcomes.py)."""

    def __init__(self, error: KafkaError | str, *, retriable: bool = True, code: int | None = None):
        self.code = code
        super().__init__(error, retriable=retriable,
                         too_large=code == KafkaError.MSG_SIZE_TOO_LARGE)


class KafkaProducerBridge:
    """A Producer whose blocking calls stay on its own native thread."""

    POLL_TIMEOUT = 0.1
    FULL_QUEUE_WAIT = 0.05

    def __init__(self, conf: dict[str, Any], name: str = "producer"):
        self.name = name
        self.pid = os.getpid()
        self._handoff = HubHandoff()
        full = dict(conf)
        full.setdefault("client.id", f"evgate-{name}-{self.pid}")
        self._safe_conf = mask(full)
        full["error_cb"] = self._on_error  # called on the poll thread
        self._error_repeats = RepeatLimiter()  # a persistent error is logged once per 10 s
        self._producer = Producer(full, logger=HubLogger(self._handoff, "evgate.kafka.librdkafka"))
        self._running = True
        #: batches (`_Batch`) whose records were all reported during the current poll; only
        #: the poll thread touches it (delivery callbacks run inside its poll() call)
        self._settled: list[_Batch] = []
        #: (AsyncResult, error, message) of single-record produces settled in the current
        #: poll: the callback only appends, the outcome is built on the hub (`_set_results`)
        self._settled_one: list[tuple[AsyncResult, Any, Any]] = []
        #: (delivery callback, _LocalError) of batch records librdkafka refused to enqueue:
        #: reported on the poll thread like delivery reports, so only that thread counts
        #: a batch's reports (no lock per record)
        self._local_failures: deque[tuple[Any, _LocalError]] = deque()
        #: (deadline, AsyncResult, records) in produce order, for `_expire` (on the hub)
        self._deadlines: deque[tuple[float, AsyncResult, int]] = deque()
        self._expiry: Any = None
        self._closed = AsyncResult()
        self.last_error: str | None = None
        start_native_thread(self._loop)
        logger.info("kafka producer %s started: %s", name, self._safe_conf)

    @property
    def running(self) -> bool:
        """False once `close()` began: callers that cached this bridge must get a new one."""
        return self._running

    def __repr__(self) -> str:
        return f"<KafkaProducerBridge {self.name} {self._safe_conf.get('bootstrap.servers')}>"

    # -- on the native thread ---------------------------------------------------------------
    def _loop(self) -> None:
        poll = self._producer.poll
        try:
            while self._running:
                # poll() waits up to POLL_TIMEOUT for the first event, then serves every
                # delivery report already queued; those settle into self._settled
                poll(self.POLL_TIMEOUT)
                if self._local_failures:
                    self._report_local_failures()
                if self._settled or self._settled_one:
                    self._hand_over_settled()
            remaining = self._producer.flush(self._flush_timeout)
            self._report_local_failures()
            self._hand_over_settled()
            self._handoff.call(self._closed.set, remaining)
        except BaseException as exc:  # noqa: BLE001 - reported on the hub, the thread ends
            self._handoff.call(self._closed.set_exception, exc)

    def _hand_over_settled(self) -> None:
        """One hub wake-up per poll iteration for every request settled in it, rather than
        one `run_callback_threadsafe` per delivery report (bench/ingest.py)."""
        settled, self._settled = self._settled, []
        settled_one, self._settled_one = self._settled_one, []
        if settled or settled_one:
            self._handoff.call(_set_results, settled, settled_one)

    def _report_local_failures(self) -> None:
        failures = self._local_failures
        while failures:
            callback, error = failures.popleft()
            callback(error, None)

    def _settle_one(self, result: AsyncResult, err: Any, msg: Any) -> None:
        """The delivery callback of a single-record produce, on the poll thread inside
        poll(): as little as possible while it holds the GIL the hub waits for."""
        self._settled_one.append((result, err, msg))

    def _on_error(self, error: KafkaError) -> None:
        self._handoff.call(self._record_error, error, self._error_repeats.admit(str(error)))

    # -- on the hub -------------------------------------------------------------------------
    def _record_error(self, error: KafkaError, suppressed: int | None = 0) -> None:
        """`suppressed`: None for a repeat not to log, else the repeats held back before."""
        self.last_error = str(error)
        if suppressed is None and not error.fatal():
            return
        level = logging.ERROR if error.fatal() else logging.WARNING
        logger.log(level, "kafka producer %s: %s%s", self.name, error,
                   suppressed_note(suppressed or 0, self._error_repeats.interval))

    def produce_many(self, records: Sequence[tuple[str, bytes, Any, Any]],
                     timeout: float | None = None) -> AsyncResult:
        """Enqueue many records (topic, value, key, headers); one AsyncResult for all.

        It yields a list with a Delivered or a ProduceError per record, in order, once every
        record is settled. Delivery reports are gathered on the poll thread and handed to the
        hub once, so a large batch costs one hub wake-up rather than one per record. With
        `timeout` (seconds), records not all settled by then yield a retriable ProduceError
        each ("no acknowledgement from Kafka in time"), within EXPIRY_INTERVAL after it: one
        sweeping greenlet per producer rather than a gevent Timeout per request.
        """
        result = AsyncResult()
        count = len(records)
        if count == 0:
            result.set([])
            return result
        if timeout is not None:
            self._deadlines.append((time.monotonic() + timeout, result, count))
            if self._expiry is None:
                self._expiry = gevent.spawn(self._expire_loop)
        if count == 1:
            topic, value, key, headers = records[0]
            callback = partial(self._settle_one, result)
            try:
                self._produce_one(topic, value, key, headers, callback)
            except _LocalFailure as exc:
                result.set([ProduceError(str(exc), code=KafkaError._QUEUE_FULL)])
            return result
        batch = _Batch(result, count, self)
        report = batch.report
        produce = self._producer.produce
        for index, (topic, value, key, headers) in enumerate(records):
            callback = partial(report, index)
            try:
                # positional: with keywords, produce() costs ~2 us more per record
                produce(topic, value, key, _ANY_PARTITION, callback, None, 0, headers or None)
            except BufferError:
                # the queue is full: let the poll thread serve delivery reports, retry once
                # (not poll() here: only the poll thread may run a batch's callbacks)
                gevent.sleep(self.FULL_QUEUE_WAIT)
                try:
                    produce(topic, value, key, _ANY_PARTITION, callback, None, 0,
                            headers or None)
                except BufferError:
                    self._local_failures.append(
                        (callback, _LocalError("the local produce queue is full")))
            except KafkaException as exc:
                self._local_failures.append((callback, _LocalError(str(exc.args[0]))))
        return result

    def _produce_one(self, topic: str, value: bytes, key: Any, headers: Any,
                     callback: Any) -> None:
        """produce() with the retry of `produce_many`; _LocalFailure when not enqueued."""
        produce = self._producer.produce
        try:
            produce(topic, value, key, _ANY_PARTITION, callback, None, 0, headers or None)
        except BufferError:
            # as for a batch: the poll thread serves the delivery reports (never poll() on
            # the hub: the callbacks belong to the poll thread), then one retry
            gevent.sleep(self.FULL_QUEUE_WAIT)
            try:
                produce(topic, value, key, _ANY_PARTITION, callback, None, 0, headers or None)
            except BufferError:
                raise _LocalFailure("the local produce queue is full") from None
        except KafkaException as exc:
            raise _LocalFailure(str(exc.args[0])) from None

    EXPIRY_INTERVAL = 0.25

    def _expire_loop(self) -> None:
        """On the hub: every EXPIRY_INTERVAL, answer the produces whose deadline passed
        (deadlines are in produce order: one timeout for all of them)."""
        deadlines = self._deadlines
        try:
            while self._running or deadlines:
                gevent.sleep(self.EXPIRY_INTERVAL)
                now = time.monotonic()
                while deadlines and deadlines[0][0] <= now:
                    _, result, count = deadlines.popleft()
                    if not result.ready():
                        result.set([ProduceError("no acknowledgement from Kafka in time")]
                                   * count)
                while deadlines and deadlines[0][1].ready():
                    deadlines.popleft()   # settled in time: forgotten
        finally:
            self._expiry = None

    def close(self, timeout: float = 10.0) -> int | None:
        """Flush what is queued (on the native thread) and stop; returns records left unsent."""
        if not self._running:
            return None
        self._flush_timeout = timeout
        self._running = False
        try:
            remaining = self._closed.get(timeout=timeout + 1)
        except (Exception, gevent.Timeout):  # noqa: BLE001 - Timeout is a BaseException
            logger.warning("kafka producer %s did not close cleanly", self.name, exc_info=True)
            return None
        if remaining:
            logger.error("kafka producer %s closed with %d unsent records", self.name, remaining)
        return remaining

    _flush_timeout = 10.0


#: produce()'s positional arguments are (topic, value, key, partition, callback,
#: on_delivery, timestamp, headers); -1 is RD_KAFKA_PARTITION_UA (the partitioner picks) and a
#: timestamp of 0 the time of produce, the defaults of the keyword form
_ANY_PARTITION = -1


class _LocalFailure(Exception):
    """A record librdkafka refused to enqueue (queue full, unknown topic, ...)."""


class _LocalError:
    """A KafkaError look-alike for a record refused before it was enqueued."""

    def __init__(self, reason: str):
        self.reason = reason

    def retriable(self) -> bool:
        return True

    def code(self) -> int:
        return KafkaError._QUEUE_FULL

    def __str__(self) -> str:
        return self.reason


class _Batch:
    """One `produce_many` call of several records: its delivery reports are only appended
    (on the poll thread, the one thread that calls `report`, so no lock), and the outcomes
    are built on the hub once all are in (`_set_results`)."""

    __slots__ = ("result", "count", "reports", "bridge")

    def __init__(self, result: AsyncResult, count: int, bridge: KafkaProducerBridge):
        self.result = result
        self.count = count
        self.reports: list[tuple[int, Any, Any]] = []
        self.bridge = bridge

    def report(self, index: int, err: Any, msg: Any) -> None:
        reports = self.reports
        reports.append((index, err, msg))
        if len(reports) == self.count:
            self.bridge._settled.append(self)   # swapped out only on this thread

    def outcomes(self) -> list[Any]:
        outcomes: list[Any] = [None] * self.count
        new = tuple.__new__   # a Delivered without its Python-level __new__: half the cost
        for index, err, msg in self.reports:
            if err is None:
                outcomes[index] = new(Delivered, (msg.topic(), msg.partition(), msg.offset()))
            else:
                outcomes[index] = ProduceError(
                    err, retriable=err.retriable() or err.code() in _RETRIABLE_CODES,
                    code=err.code())
        return outcomes


def _set_results(settled: list["_Batch"],
                 settled_one: list[tuple[AsyncResult, Any, Any]] = ()) -> None:
    """On the hub: settle the requests whose records were all acknowledged (or failed)."""
    for batch in settled:
        if not batch.result.ready():   # not answered as timed out already
            batch.result.set(batch.outcomes())
    for result, err, msg in settled_one:
        if result.ready():
            continue
        if err is not None:
            outcome: Any = ProduceError(
                err, retriable=err.retriable() or err.code() in _RETRIABLE_CODES,
                code=err.code())
        else:
            outcome = Delivered(msg.topic(), msg.partition(), msg.offset())
        result.set([outcome])


_RETRIABLE_CODES = {
    KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN, KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.REQUEST_TIMED_OUT, KafkaError.UNKNOWN_TOPIC_OR_PART,
}
