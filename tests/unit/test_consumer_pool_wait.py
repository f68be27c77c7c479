"""A reader that does not become ready in time: the stream gets a 503 with a JSON body and
its subscription is closed. `AsyncResult.get(timeout=...)` raises gevent.Timeout, a
BaseException: caught with `except Exception` only, it reached the server as a plain-text 500
and left the subscription open (seen once in a full run, under load)."""
from __future__ import annotations

import gevent
import pytest
from gevent.event import AsyncResult

from evgate.config import Config
from evgate.core.stream import Subscription
from evgate.errors import BackendUnavailableError
from evgate.kafka.consumer_pool import ConsumerPool


def test_a_reader_not_ready_in_time_is_a_503_and_closes_the_subscription(monkeypatch):
    pool = ConsumerPool(Config.from_env({"EVGATE_STREAM_STATS_INTERVAL_MS": "0"}))
    pool.setup_timeout = -1.9            # _wait allows setup_timeout + 2 s: 0.1 s here
    subscription = Subscription(10, "slow-start")
    never = AsyncResult()
    with pytest.raises(BackendUnavailableError) as refused:
        pool._wait(never, subscription)
    assert refused.value.status == 503
    assert subscription.closed is not None and subscription.closed.kind == "error"
    pool.close()


def test_close_of_clients_that_never_answer_does_not_raise():
    """`close()` of the Kafka clients must not raise (worker exit): their waits time out."""
    from evgate.kafka.group_consumer import GroupConsumer
    from evgate.kafka.producer import KafkaProducerBridge
    for cls in (GroupConsumer, KafkaProducerBridge):
        client = cls.__new__(cls)
        client._running = True
        client._closed = AsyncResult()            # its thread never reports back
        client.name = "stuck"
        with gevent.Timeout(5):
            client.close(timeout=0.05)      # logs a warning, returns
