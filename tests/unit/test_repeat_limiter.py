"""librdkafka's repeated errors reach the log once per interval per client, with a count of
what was held back (evgate/kafka/threads.py RepeatLimiter, HubLogger; the producer's error_cb
uses the same limiter)."""
from __future__ import annotations

import logging

from confluent_kafka import KafkaError

from evgate.kafka.threads import HubLogger, RepeatLimiter

AUTH = ("FAIL [evgate-p7-1#producer-8] [thrd:sasl_plaintext://127.0.0.1:9094/bootstrap]: "
        "SASL authentication error: Authentication failed (after {}ms in state AUTH_REQ)")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ImmediateHandoff:
    """HubHandoff for a test: the call runs at once on this thread."""

    def call(self, fn, *args) -> None:
        fn(*args)


def test_once_per_interval_per_distinct_message_with_the_count():
    clock = Clock()
    limiter = RepeatLimiter(interval=10, clock=clock)
    assert limiter.admit(AUTH.format(301)) == 0
    for step in range(19):            # twice a second for 9.5 s; only the numbers change
        clock.now += 0.5
        assert limiter.admit(AUTH.format(300 + step)) is None
    assert limiter.admit("another error") == 0   # distinct messages are independent
    clock.now += 0.5                  # 10 s after the first one
    assert limiter.admit(AUTH.format(302)) == 19
    clock.now += 1
    assert limiter.admit(AUTH.format(302)) is None
    clock.now += 60                   # quiet for a while: let through, nothing held back
    assert limiter.admit(AUTH.format(1)) == 1


def test_remembers_a_bounded_number_of_messages():
    clock = Clock()
    limiter = RepeatLimiter(interval=10, clock=clock)
    for n in range(RepeatLimiter.MAX_MESSAGES + 50):
        assert limiter.admit(f"error kind {chr(65 + n % 26)}{'x' * (n // 26)}") == 0
    assert len(limiter._seen) == RepeatLimiter.MAX_MESSAGES
    # the newest are still remembered (and suppressed), the oldest were forgotten
    last = RepeatLimiter.MAX_MESSAGES + 49
    assert limiter.admit(f"error kind {chr(65 + last % 26)}{'x' * (last // 26)}") is None
    assert limiter.admit("error kind A") == 0


def test_hub_logger_rate_limits_librdkafka_logs(caplog):
    clock = Clock()
    hub_logger = HubLogger(ImmediateHandoff(), "evgate.kafka.librdkafka.test")
    hub_logger._repeats = RepeatLimiter(interval=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="evgate.kafka.librdkafka.test"):
        for step in range(41):        # 20 s of an error every half second
            hub_logger.log(logging.ERROR, "%s [%s] %s", "FAIL", "evgate-p7-1#producer-8",
                           f"SASL authentication error (after {step}ms)")
            clock.now += 0.5
        hub_logger.log(logging.INFO, "plain %s", "message")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 + 1
    assert messages[0] == "FAIL [evgate-p7-1#producer-8] SASL authentication error (after 0ms)"
    assert messages[1].endswith("(19 similar message(s) suppressed in the last 10s)")
    assert messages[2].endswith("(19 similar message(s) suppressed in the last 10s)")
    assert messages[3] == "plain message"
    assert [r.levelno for r in caplog.records[:3]] == [logging.ERROR] * 3


def test_producer_error_callback_is_rate_limited(caplog):
    from evgate.kafka.producer import KafkaProducerBridge
    clock = Clock()
    bridge = KafkaProducerBridge.__new__(KafkaProducerBridge)   # no client: only the callback
    bridge.name, bridge.last_error = "p7", None
    bridge._handoff = ImmediateHandoff()
    bridge._error_repeats = RepeatLimiter(interval=10, clock=clock)
    error = KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error (after 301ms)")
    with caplog.at_level(logging.WARNING, logger="evgate.kafka.producer"):
        for _ in range(30):
            bridge._on_error(error)
            clock.now += 0.5
    assert bridge.last_error is not None and "SASL" in bridge.last_error
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[1].endswith("(19 similar message(s) suppressed in the last 10s)")
