"""The producer bridge's answers without a broker that acknowledges (issue 11): the per-producer
expiry that replaced a gevent Timeout per request, and records librdkafka refuses at once.
A real librdkafka client pointed at a closed port: nothing is mocked."""
from __future__ import annotations

import socket
import threading
import time

import gevent
import pytest

from evgate.core.outcomes import Delivered
from evgate.kafka.producer import KafkaProducerBridge, ProduceError


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"   # nothing listens once closed


@pytest.fixture()
def unreachable():
    bridge = KafkaProducerBridge({"bootstrap.servers": _closed_port(), "acks": "all",
                                  "enable.idempotence": True, "message.timeout.ms": 60000,
                                  "message.max.bytes": 2000, "log_level": 0}, name="test")
    yield bridge
    bridge.close(timeout=0.5)


@pytest.mark.parametrize("count", [1, 3])
def test_unacknowledged_records_are_answered_when_the_timeout_passes(unreachable, count):
    started = time.monotonic()
    outcomes = unreachable.produce_many([("t", b"x", None, None)] * count, timeout=0.3).get(
        timeout=5)
    waited = time.monotonic() - started
    assert 0.3 <= waited < 0.3 + 2 * KafkaProducerBridge.EXPIRY_INTERVAL + 0.5
    assert len(outcomes) == count
    assert all(isinstance(o, ProduceError) and o.retriable for o in outcomes)
    assert "no acknowledgement from Kafka in time" in str(outcomes[0])


def test_without_a_timeout_nothing_is_answered_early(unreachable):
    result = unreachable.produce_many([("t", b"x", None, None)])
    with pytest.raises(gevent.Timeout):   # still waiting for librdkafka
        result.get(timeout=0.8)
    assert not result.ready()


def test_a_record_refused_at_once_fails_without_waiting(unreachable):
    started = time.monotonic()
    [outcome] = unreachable.produce_many([("t", b"x" * 5000, None, None)],
                                         timeout=30).get(timeout=5)
    assert time.monotonic() - started < 1
    assert isinstance(outcome, ProduceError) and outcome.retriable
    assert not isinstance(outcome, Delivered)


def test_single_and_batch_records_are_acknowledged_by_a_real_broker(kafka_bootstrap):
    from confluent_kafka.admin import AdminClient, NewTopic
    import uuid
    topic = f"bridge-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    bridge = KafkaProducerBridge({"bootstrap.servers": kafka_bootstrap, "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 1}, name="test")
    try:
        [one] = bridge.produce_many([(topic, b"a", "k", [("h1", b"v1")])],
                                    timeout=10).get(timeout=15)
        many = bridge.produce_many([(topic, b"b", None, [("h", b"v"), ("h2", None)]),
                                    (topic, b"c", "k2", None), (topic, b"d", b"k3", [])],
                                   timeout=10).get(timeout=15)
        landed = _consume(kafka_bootstrap, topic, 4)
    finally:
        bridge.close(timeout=5)
        admin.delete_topics([topic])
    assert one == Delivered(topic, 0, 0)
    assert [d.offset for d in many] == [1, 2, 3]
    # value, key and headers each in its place (produce() is called with positional arguments)
    assert landed == [(b"a", b"k", [("h1", b"v1")]), (b"b", None, [("h", b"v"), ("h2", None)]),
                      (b"c", b"k2", None), (b"d", b"k3", None)]


def _consume(bootstrap: str, topic: str, count: int) -> list[tuple]:
    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[tuple] = []
    deadline = time.monotonic() + 20
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append((msg.value(), msg.key(), msg.headers()))
    finally:
        consumer.close()
    return got


def test_a_batch_answers_every_record_at_its_index_when_some_are_refused(kafka_bootstrap):
    """Refused records are reported through the poll thread like delivery reports (one
    counter, no lock): each outcome lands at its record's index, and the batch is answered
    without waiting for the timeout."""
    from confluent_kafka.admin import AdminClient, NewTopic
    import uuid
    topic = f"bridge-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(10)
    bridge = KafkaProducerBridge({"bootstrap.servers": kafka_bootstrap, "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 1,
                                  "message.max.bytes": 2000}, name="test")
    records = [(topic, b"big" * 1000 if i % 4 == 1 else f"r{i}".encode(), f"k{i}", None)
               for i in range(40)]
    try:
        started = time.monotonic()
        outcomes = bridge.produce_many(records, timeout=30).get(timeout=15)
        waited = time.monotonic() - started
    finally:
        bridge.close(timeout=5)
        admin.delete_topics([topic])
    assert waited < 5
    assert len(outcomes) == 40
    for index, outcome in enumerate(outcomes):
        if index % 4 == 1:
            assert isinstance(outcome, ProduceError) and outcome.retriable, (index, outcome)
        else:
            assert type(outcome) is Delivered and outcome.topic == topic, (index, outcome)
    delivered = [o for o in outcomes if type(o) is Delivered]
    assert len({(o.partition, o.offset) for o in delivered}) == 30   # each record its own


def test_a_full_local_queue_fails_the_records_it_cannot_take(unreachable):
    """queue.buffering.max.messages reached: the records past it fail at once (retriable),
    the enqueued ones stay pending; nothing is counted twice."""
    bridge = KafkaProducerBridge({"bootstrap.servers": _closed_port(), "acks": "all",
                                  "enable.idempotence": True, "message.timeout.ms": 1000,
                                  "queue.buffering.max.messages": 3, "log_level": 0},
                                 name="test")
    try:
        outcomes = bridge.produce_many([("t", b"x", None, None)] * 6,
                                       timeout=30).get(timeout=10)
    finally:
        bridge.close(timeout=0.5)
    assert len(outcomes) == 6
    assert all(isinstance(o, ProduceError) and o.retriable for o in outcomes)
    assert sum("queue is full" in str(o) for o in outcomes) == 3


def test_a_single_record_on_a_full_queue_fails_at_once_without_polling_on_the_hub(
        unreachable, monkeypatch):
    """One record past queue.buffering.max.messages: a retriable failure after one wait for
    the poll thread, and the hub never calls poll() (the delivery callbacks are the poll
    thread's)."""
    bridge = KafkaProducerBridge({"bootstrap.servers": _closed_port(), "acks": "all",
                                  "enable.idempotence": True, "message.timeout.ms": 1000,
                                  "queue.buffering.max.messages": 1, "log_level": 0},
                                 name="test")
    hub_polls = []
    real = bridge._producer

    class Watched:
        def __getattr__(self, name):
            return getattr(real, name)

        def poll(self, timeout=None):
            if threading.current_thread() is threading.main_thread():
                hub_polls.append(timeout)
            return real.poll(timeout)
    try:
        first = bridge.produce_many([("t", b"x", None, None)], timeout=30)
        monkeypatch.setattr(bridge, "_producer", Watched())
        second = bridge.produce_many([("t", b"y", None, None)], timeout=30).get(timeout=10)
        monkeypatch.undo()
        # the first record is still answered (it times out: no broker)
        assert len(first.get(timeout=10)) == 1
    finally:
        monkeypatch.undo()
        bridge.close(timeout=0.5)
    assert len(second) == 1 and isinstance(second[0], ProduceError) and second[0].retriable
    assert "queue is full" in str(second[0])
    assert hub_polls == []
