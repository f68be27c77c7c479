"""Spare consumers (real gunicorn, real Kafka): a client's first page from a cursor takes an
idle, already-connected consumer instead of connecting one; spares stay within the per-worker
reader cap (a client past it still gets 503 + Retry-After), give way to readers of other APIs,
and close with their threads after the idle grace."""
from __future__ import annotations

import socket
import time

import pytest

from evgate.kafka import cursor as cursors
from tests.support.kafka_broker import create_topic
from tests.support.streams import (kafka_endpoint, open_raw_sse, produce, producer, stream_api,
                                   stream_stats)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PAGES = {"type": "http-get", "configuration": {"messagesLimitCount": 500,
                                               "messagesLimitDurationMs": 3000}}
SSE = {"type": "sse", "configuration": {"heartbeatIntervalInMs": 1000}}
JSON = {"Accept": "application/json"}
TAIL = {"Accept": "application/json", "Prefer": "wait=0"}


def _stats(gw) -> dict[str, int]:
    """The worker's latest stream stats line (spares included)."""
    return wait_for(lambda: (stream_stats(gw.log_path.read_text(errors="replace")) or [None])[-1],
                    "a stream stats line")


def _wait_stats(gw, check, what: str, timeout: float = 15) -> dict[str, int]:
    return wait_for(lambda: s if check(s := _stats(gw)) else None, what, timeout=timeout)


def _threads(gw) -> int:
    with open(f"/proc/{gw.proc.pid}/task/{gw.proc.pid}/children") as children:
        (pid,) = [int(p) for p in children.read().split()]
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def test_first_page_from_a_cursor_takes_a_connected_spare(gateway_factory, kafka_bootstrap,
                                                         unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    # more than the pages read: the reader never reaches the live end (and its tail) here
    produce(kafka_bootstrap, unique_topic, [f"m{i}" for i in range(5000)])
    gw = gateway_factory([stream_api("/g", [PAGES], kafka_endpoint(unique_topic))], workers=1,
                         env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200",
                              "EVGATE_STREAM_READER_IDLE_MS": "1500"})
    time.sleep(0.5)
    before = _threads(gw)
    status, tail = gw.json("GET", "/g", headers=TAIL)       # a stream opened on the topic
    assert status == 200 and tail["items"] == []
    _wait_stats(gw, lambda s: s["spares_ready"] == 2, "two connected spares")
    cursor = cursors.encode({(unique_topic, 0): 99})
    seen = []
    for _ in range(10):
        status, page = gw.json("GET", f"/g?cursor={cursor}&limit=500",
                               headers={**JSON, "Prefer": "wait=2"})
        assert status == 200
        seen += [item["content"] for item in page["items"]]
        cursor = page["pagination"]["nextCursor"]
        if len(seen) >= 1100:
            break
    assert seen[:1100] == [f"m{i}" for i in range(100, 1200)]
    stats = _wait_stats(gw, lambda s: s["readers_started"] >= 1, "the reader in the stats")
    # one reader for the three pages, and it was a spare; the pool made another one
    assert stats["readers_started"] == 1 and stats["spares_taken"] == 1, stats
    # without new streams the spares and the idle reader close, their threads end
    _wait_stats(gw, lambda s: s["spares"] == 0 and s["readers"] == 0,
                "spares and the idle reader to close")
    wait_for(lambda: _threads(gw) <= before + 4, "the consumers' threads to end", timeout=10)


def _hold_sse(gw, path: str, cursor: str) -> tuple[socket.socket, bytes]:
    """An SSE client resuming at `cursor` that reads the response head, then nothing."""
    sock, _, head = open_raw_sse(gw.port, path, cursor)
    return sock, head


def test_spares_stay_within_the_reader_cap_and_give_way(gateway_factory, kafka_bootstrap,
                                                       unique_topic):
    """Two consumers per worker: spares take part of that budget, never more. Another API's
    spares are closed for a reader that needs the room; a client past the cap gets 503."""
    other = unique_topic + "-other"
    create_topic(kafka_bootstrap, unique_topic)
    create_topic(kafka_bootstrap, other)
    # 20 MiB: a client that never reads holds its reader long before the reader's end
    p = producer(kafka_bootstrap)
    for _ in range(20000):
        while True:
            try:
                p.produce(unique_topic, b"x" * 1024)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(30) == 0
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic)),
                          stream_api("/o", [PAGES], kafka_endpoint(other))], workers=1,
                         env={"EVGATE_STREAM_STATS_INTERVAL_MS": "100",
                              "EVGATE_STREAM_READERS_PER_WORKER": "2",
                              "EVGATE_STREAM_READER_SHARE_WINDOW": "10",
                              "EVGATE_STREAM_READER_CROWDED_SHARE_WINDOW": "10",
                              "EVGATE_STREAM_READER_IDLE_MS": "60000"})
    # the other API's topic gets both spares of the budget
    status, _ = gw.json("GET", "/o", headers=TAIL)
    assert status == 200
    _wait_stats(gw, lambda s: s["spares_ready"] == 2, "two spares for the other topic")
    held = []
    try:
        for offset in (99, 9999):
            sock, head = _hold_sse(gw, "/s", cursors.encode({(unique_topic, 0): offset}))
            held.append(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            stats = _stats(gw)
            assert stats["readers"] + stats["spares"] <= 2, stats
        _wait_stats(gw, lambda s: s["readers"] == 2 and s["spares"] == 0,
                    "two readers, the spares closed for them")
        # both readers serve a client: the third position gets 503, no spare is made for it
        sock, head = _hold_sse(gw, "/s", cursors.encode({(unique_topic, 0): 18999}))
        sock.close()
        assert head.startswith(b"HTTP/1.1 503") and b"\r\nRetry-After: 2\r\n" in head, head
        time.sleep(0.5)
        stats = _stats(gw)
        assert stats["readers"] == 2 and stats["spares"] == 0, stats
    finally:
        for sock in held:
            sock.close()
