"""FanoutWalk (evgate/core/stream.py): a tail's passes over many subscribers leave the hub to
others between slices, deliver every batch to every subscriber once and in order (batches
queued during a pass go out together), and small fan-outs stay inline."""
from __future__ import annotations

import gevent

from evgate.core.message import Message
from evgate.core.stream import FanoutWalk, StreamItem, Subscription


def _item(i: int) -> StreamItem:
    return StreamItem(Message(content=str(i).encode()), str(i))


def _subscribers(n: int, log: list) -> set[Subscription]:
    subs = set()
    for index in range(n):
        sub = Subscription(capacity=1000, label=str(index))
        sub.got = []

        def direct(items, sub=sub):
            sub.got.extend(item.cursor for item in items)
            log.append(("write", sub.label, len(items)))
            return True
        sub.direct = direct
        subs.add(sub)
    return subs


def test_a_large_pass_yields_to_other_greenlets_between_slices():
    log: list = []
    subs = _subscribers(FanoutWalk.SLICE * 4, log)
    walk = FanoutWalk(subs)
    walk.offer([_item(0)])
    other = gevent.spawn(lambda: log.append(("other",)))   # e.g. a new connection's greenlet
    gevent.sleep(0.1)
    assert other.dead
    position = log.index(("other",))
    writes = [entry for entry in log if entry[0] == "write"]
    assert len(writes) == len(subs)
    # the other greenlet ran during the pass, not after it
    assert 0 < position < len(log) - 1, position


def test_batches_queued_during_a_pass_reach_everybody_once_in_order_joined():
    log: list = []
    subs = _subscribers(FanoutWalk.SLICE * 3 + 5, log)
    walk = FanoutWalk(subs)
    walk.offer([_item(0)])
    gevent.sleep(0)                  # the first pass starts, and yields after a slice
    for i in range(1, 6):            # arrive while the first pass runs
        walk.offer([_item(i)])
    gevent.sleep(0.2)
    for sub in subs:
        assert sub.got == [str(i) for i in range(6)]
    # the five queued batches went out as one joined write per subscriber
    assert {n for (_, _, n) in log} == {1, 5}
    assert walk.pending == []


def test_small_fan_out_is_inline():
    log: list = []
    subs = _subscribers(10, log)
    FanoutWalk(subs).offer([_item(0), _item(1)])
    assert all(sub.got == ["0", "1"] for sub in subs)   # no greenlet switch needed


def test_a_pass_starved_by_other_greenlets_finishes_inline():
    """A connection storm: every yield lets many slow greenlets run. After YIELD_BUDGET the
    pass stops yielding, so the last subscriber is not served after every storm round."""
    import time
    log: list = []
    subs = _subscribers(FanoutWalk.SLICE * 20, log)
    walk = FanoutWalk(subs)
    walk.offer([_item(0)])

    def handshake():                 # a slow request that keeps coming back (30 ms a step)
        while not all(sub.got for sub in subs):
            time.sleep(0.03)         # blocks the hub, as CPU work would
            log.append(("storm",))
            gevent.sleep(0)
    storm = [gevent.spawn(handshake) for _ in range(3)]
    gevent.joinall(storm, timeout=10)
    assert all(sub.got == ["0"] for sub in subs)
    # without the budget the pass would yield 19 times, each after a round of 3 storm steps
    assert sum(1 for entry in log if entry == ("storm",)) < 3 * 5


def test_a_subscriber_that_fails_is_closed_and_the_pass_goes_on(caplog):
    """A message one subscriber cannot take (its format fails to encode it) must not leave
    the subscribers after it in the pass without the record (a silent gap): the failing one
    is closed with an error, the others get everything."""
    for size in (5, FanoutWalk.SLICE * 2):                   # inline, and a walked pass
        log: list = []
        subs = sorted(_subscribers(size, log), key=lambda s: int(s.label))
        broken = subs[1:3]
        for sub in broken:
            def direct(items):
                raise UnicodeEncodeError("utf-8", "x", 0, 1, "cannot encode")
            sub.direct = direct
        walk = FanoutWalk(set(subs))
        walk.offer([_item(0)])
        walk.offer([_item(1)])
        gevent.sleep(0.1)
        for sub in subs:
            if sub in broken:
                assert sub.closed is not None and sub.closed.kind == "error"
            else:
                assert sub.got == ["0", "1"], sub.label
        failures = [r for r in caplog.records if "fan-out" in r.getMessage()]
        assert failures and failures[0].exc_info is not None
        caplog.clear()
