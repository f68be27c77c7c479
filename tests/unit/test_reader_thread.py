"""A catch-up reader's native thread against a real broker (issue 15): held back by flow control
it is woken by the hub, not by a timer, and a spare that becomes a reader starts without a
second metadata round trip when what it looked up while waiting still answers the cursor."""
from __future__ import annotations

import threading
import time

import gevent
import pytest

from evgate.kafka.consumer import KafkaConsumerBridge, Start, UnknownPartition
from tests.support.kafka_broker import create_topic
from tests.support.streams import produce


class _Sink:
    """Collects what the bridge hands to the hub; `pause_after` pauses it on the hub after
    that many batches (what a catch-up reader's flow control does)."""

    def __init__(self) -> None:
        self.bridge: KafkaConsumerBridge | None = None
        self.values: list[bytes] = []
        self.batches = 0
        self.pause_after: int | None = None
        self.ready: dict | None = None
        self.failed: Exception | None = None

    def on_ready(self, position) -> None:
        self.ready = position

    def on_start_failed(self, error: Exception) -> None:
        self.failed = error

    def on_batch(self, items, position, eof) -> None:
        self.batches += 1
        self.values.extend(item.content for item in items)
        if self.pause_after is not None and self.batches >= self.pause_after:
            self.bridge.paused = True

    def on_lost(self, reason: str) -> None:
        self.failed = RuntimeError(reason)


def _until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        gevent.sleep(0.01)     # the bridge's calls run on this thread's hub


def _conf(bootstrap: str) -> dict:
    return {"bootstrap.servers": bootstrap, "log_level": 0}


def _closed_when_done(bridge: KafkaConsumerBridge) -> threading.Event:
    closed = threading.Event()
    close = bridge._close_quietly

    def close_and_tell() -> None:
        close()
        closed.set()
    bridge._close_quietly = close_and_tell      # the thread looks it up on the instance
    return closed


def test_a_paused_reader_fetches_nothing_and_resumes_when_the_hub_unpauses_it(
        kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    produce(kafka_bootstrap, unique_topic, [f"r{i}" for i in range(60)])
    sink = _Sink()
    sink.pause_after = 1
    bridge = KafkaConsumerBridge(_conf(kafka_bootstrap),
                                 Start("offsets", (unique_topic,), {(unique_topic, 0): -1}),
                                 sink, name="held-back", batch=10)
    # only the hub's nudge can wake it in time: the safety-net timeout is far away
    bridge.HELD_BACK_WAIT = 60.0
    sink.bridge = bridge
    closed = _closed_when_done(bridge)
    try:
        _until(lambda: sink.batches >= 1, 15, "the first batch")
        gevent.sleep(0.5)
        held = len(sink.values)
        # paused on the first batch: at most the batches already handed over came after it
        assert held <= 10 * (1 + KafkaConsumerBridge.MAX_PENDING_BATCHES), held
        gevent.sleep(0.5)
        assert len(sink.values) == held, "a paused reader went on fetching"
        sink.pause_after = None
        bridge.paused = False
        _until(lambda: len(sink.values) == 60, 10, "every record after the unpause")
        assert sink.values == [f"r{i}".encode() for i in range(60)]
        # paused again at the end, then stopped: the stop wakes it too (no 60 s wait)
        bridge.paused = True
        gevent.sleep(0.1)
        bridge.stop()
        assert closed.wait(10), "a stopped, paused reader did not close its consumer"
    finally:
        bridge.stop()
    assert sink.failed is None


def _ready_spare(bootstrap: str, topic: str) -> tuple[KafkaConsumerBridge, list]:
    spare = KafkaConsumerBridge(_conf(bootstrap), Start("spare", (topic,)), _Sink(),
                                name="spare")
    _until(lambda: spare.spare_state == "ready", 15, "the spare to connect")
    lookups: list = []
    lookup = spare._partitions

    def counted(topics):
        lookups.append(topics)
        return lookup(topics)
    spare._partitions = counted
    return spare, lookups


def test_a_claimed_spare_reads_from_the_cursor_without_asking_for_metadata_again(
        kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    produce(kafka_bootstrap, unique_topic, [f"r{i}" for i in range(10)])
    spare, lookups = _ready_spare(kafka_bootstrap, unique_topic)
    sink = _Sink()
    sink.bridge = spare
    try:
        assert spare.claim(Start("offsets", (unique_topic,), {(unique_topic, 0): 4}), sink,
                           "reader")
        _until(lambda: len(sink.values) == 5, 15, "the records after the cursor")
        assert sink.values == [f"r{i}".encode() for i in range(5, 10)]
        assert sink.ready == {(unique_topic, 0): 4}
        assert lookups == [], "the spare's partitions were looked up again"
    finally:
        spare.stop()


def test_a_cursor_naming_a_partition_the_spare_did_not_see_is_checked_with_kafka(
        kafka_bootstrap, unique_topic):
    """What the spare knows is not trusted for a partition it did not see (one added since,
    or a bad cursor): Kafka is asked, and a partition it does not have is refused."""
    create_topic(kafka_bootstrap, unique_topic)
    spare, lookups = _ready_spare(kafka_bootstrap, unique_topic)
    sink = _Sink()
    try:
        assert spare.claim(Start("offsets", (unique_topic,), {(unique_topic, 7): 4}), sink,
                           "reader")
        _until(lambda: sink.failed is not None, 15, "the start to fail")
        assert isinstance(sink.failed, UnknownPartition), sink.failed
        assert lookups == [(unique_topic,)]
    finally:
        spare.stop()


@pytest.mark.parametrize("case", ["fresh", "stale", "other topics", "not a cursor start"])
def test_known_partitions_are_used_once_fresh_and_for_the_same_topics_only(case):
    bridge = KafkaConsumerBridge.__new__(KafkaConsumerBridge)   # no consumer, no thread
    age = KafkaConsumerBridge.METADATA_TTL + 1 if case == "stale" else 0.0
    bridge._known = (time.monotonic() - age, ("t",), [("t", 0), ("t", 1)])
    topics = ("u",) if case == "other topics" else ("t",)
    kind = "tail" if case == "not a cursor start" else "offsets"
    spec = Start(kind, topics, {("t", 1): 3} if kind == "offsets" else {})
    expected = [("t", 0), ("t", 1)] if case == "fresh" else None
    assert bridge._known_partitions(spec) == expected
    assert bridge._known_partitions(spec) is None      # used at most once
