"""A batch offered to a subscription without the direct writer: buffered in order with one
wake-up while it fits, and a client it would overflow is cut as slow (nothing half-kept)."""
from __future__ import annotations

import pytest

from evgate.core.stream import StreamItem, Subscription, SubscriptionClosed


def _items(start: int, count: int) -> list[StreamItem]:
    return [StreamItem(None, f"c{i}", ("t", 0), i, size=1) for i in range(start, start + count)]


def test_a_batch_that_fits_is_buffered_in_order():
    subscription = Subscription(capacity=10, label="fits")
    subscription.offer_many(_items(0, 4))
    subscription.offer_many(_items(4, 6))           # exactly full
    assert subscription.closed is None and subscription.buffered == 10
    assert [i.offset for i in subscription.get(timeout=0, limit=3)] == [0, 1, 2]
    assert [i.offset for i in subscription.get(timeout=0)] == list(range(3, 10))
    assert subscription.get(timeout=0) == []


def test_a_batch_past_the_capacity_cuts_the_client_as_slow():
    subscription = Subscription(capacity=10, label="overflow")
    cut = []
    subscription.on_overflow = lambda: cut.append(True)
    subscription.offer_many(_items(0, 6))
    subscription.offer_many(_items(6, 5))           # one too many
    assert subscription.closed is not None and subscription.closed.kind == "slow" and cut
    assert subscription.buffered == 0               # freed at once
    with pytest.raises(SubscriptionClosed):
        subscription.get(timeout=0)
    subscription.offer_many(_items(11, 2))          # after the cut: ignored
    assert subscription.buffered == 0
