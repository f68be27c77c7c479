"""Backoff: exponential ceiling, bounded by max, full jitter within [0, ceiling]."""
import random

import pytest

from evgate.entrypoints.webhook.retry import Backoff


def test_ceiling_doubles_then_caps():
    backoff = Backoff(base_s=0.5, max_s=30.0)
    assert [backoff.ceiling(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.ceiling(10_000) == 30.0  # no overflow on very long outages


@pytest.mark.parametrize("attempt", [1, 2, 5, 12, 500])
def test_delay_within_bounds(attempt):
    backoff = Backoff(base_s=0.1, max_s=2.0)
    rng = random.Random(attempt)
    delays = [backoff.delay(attempt, rng) for _ in range(500)]
    assert all(0.0 <= d <= backoff.ceiling(attempt) for d in delays)
    # full jitter: spread over the whole range, not clustered at the ceiling
    assert min(delays) < backoff.ceiling(attempt) * 0.2 < max(delays)


def test_attempt_limits():
    assert not Backoff(max_attempts=0).exhausted(10 ** 6)  # 0 = forever
    limited = Backoff(max_attempts=3)
    assert [limited.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
