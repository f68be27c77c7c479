"""Bounded resources per client, as an attacker would test them (real gunicorn, real Kafka):
many anonymous clients resuming from old positions and never reading must not cost a private
consumer and an unbounded buffer each. Readers are shared and capped (503 + Retry-After past
the cap), a worker's memory and threads stay bounded, clients that never read are cut, idle
readers close, and a cursor naming a partition that does not exist is a 400."""
from __future__ import annotations

import http.client
import json
import socket
import time

import pytest
import websocket

from evgate.kafka import cursor as cursors
from tests.support.kafka_broker import create_topic
from tests.support.streams import (SseClient, kafka_endpoint, open_raw_sse, producer, stream_api,
                                   stream_stats)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

SSE = {"type": "sse", "configuration": {"heartbeatIntervalInMs": 1000}}
GET = {"type": "http-get", "configuration": {"messagesLimitCount": 500,
                                             "messagesLimitDurationMs": 1000}}
WS = {"type": "websocket"}
RECORD = b"x" * 1024


def _fill(bootstrap: str, topic: str, count: int) -> None:
    p = producer(bootstrap)
    for _ in range(count):
        while True:
            try:
                p.produce(topic, RECORD)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(30) == 0


def _proc_status(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "Threads"):
                values[name] = int(value.split()[0])
    return values


def _worker_pid(gw) -> int:
    with open(f"/proc/{gw.proc.pid}/task/{gw.proc.pid}/children") as children:
        pids = [int(pid) for pid in children.read().split()]
    assert len(pids) == 1, pids
    return pids[0]


def _stats(gw) -> dict[str, int]:
    stats = wait_for(lambda: stream_stats(gw.log_path.read_text(errors="replace")),
                     "a stream stats line")
    return stats[-1]


def _open_sse(gw, cursor: str) -> tuple[socket.socket, int, bytes]:
    return open_raw_sse(gw.port, "/s", cursor)


def test_resuming_clients_that_never_read_cost_bounded_memory_threads_and_readers(
        gateway_factory, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    _fill(kafka_bootstrap, unique_topic, 20000)
    cap = 6
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=1,
                         env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200",
                              "EVGATE_STREAM_READERS_PER_API": str(cap),
                              "EVGATE_STREAM_READER_SHARE_WINDOW": "100",
                              "EVGATE_STREAM_READER_CROWDED_SHARE_WINDOW": "100",
                              "EVGATE_STREAM_SLOW_CLIENT_MS": "8000",
                              "EVGATE_STREAM_READER_IDLE_MS": "500"})
    pid = _worker_pid(gw)
    before = _proc_status(pid)
    # 80 clients: 10 distinct positions 1,000 records apart (beyond the share window), 8
    # clients each; at most `cap` readers may run, later clients get 503 unless they can
    # share a running reader.
    clients, refused = [], []
    for index in range(80):
        offset = (9 - index // 8) * 1000 - 1
        sock, status, raw = _open_sse(gw, cursors.encode({(unique_topic, 0): offset}))
        if status == 200:
            clients.append(sock)
        else:
            refused.append((status, raw))
            sock.close()
    assert len(clients) >= cap and len(refused) >= 8 * (10 - cap), (len(clients),
                                                                     len(refused))
    for status, raw in refused:
        head, _, body = raw.partition(b"\r\n\r\n")
        assert status == 503 and b"\r\nRetry-After: 2\r\n" in head, raw[:300]
        error = json.loads(body[body.index(b"{"):])
        assert error["http_status_code"] == 503 and error["key"] == "TOO_MANY_READERS"
    # the readers fetch until their clients' buffers are full, then pause; on a slow box
    # the first clients may already have been cut as slow (never more than were accepted)
    time.sleep(2)
    during = _proc_status(pid)
    stats = _stats(gw)
    assert stats["readers"] <= cap and 0 < stats["subscriptions"] <= len(clients), stats
    grown_mib = (during["VmRSS"] - before["VmRSS"]) / 1024
    assert grown_mib < 150, f"the worker grew by {grown_mib:.0f} MiB"
    assert during["Threads"] - before["Threads"] <= cap * 8, (before, during)
    # clients that never read are cut (their readers waited stream_slow_client_ms for them)
    for sock in clients:
        sock.settimeout(0.2)
    def all_cut() -> bool:
        return _stats(gw)["subscriptions"] == 0
    wait_for(all_cut, "the clients that never read to be cut", timeout=30)
    # their readers close after the idle grace; a new client may start one again
    wait_for(lambda: _stats(gw)["readers"] == 0, "idle readers to close", timeout=10)
    after = _proc_status(pid)
    assert after["Threads"] - before["Threads"] <= 4, (before, after)
    for sock in clients:
        sock.close()
    sock, status, _ = _open_sse(gw, cursors.encode({(unique_topic, 0): 18999}))
    sock.close()
    assert status == 200


def test_past_the_reader_cap_a_client_shares_a_reader_far_behind_it_rather_than_503(
        gateway_factory, kafka_bootstrap, unique_topic):
    """One reader allowed and busy: a client further ahead of it than the share window but
    within the crowded share window joins it (200, then exactly the records after its
    cursor, once the reader got there); a client beyond that window gets 503."""
    create_topic(kafka_bootstrap, unique_topic)
    _fill(kafka_bootstrap, unique_topic, 30000)
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=1,
                         env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200",
                              "EVGATE_STREAM_READERS_PER_API": "1",
                              "EVGATE_STREAM_READER_SHARE_WINDOW": "10",
                              "EVGATE_STREAM_READER_CROWDED_SHARE_WINDOW": "10000",
                              "EVGATE_STREAM_SLOW_CLIENT_MS": "1500",
                              "EVGATE_STREAM_READER_IDLE_MS": "60000"})
    # the one reader, at offset 100, held by a client that never reads: it pauses once that
    # client's buffer and socket are full and its own read-ahead is done (5,000-8,000 on)
    blocker, status, raw = _open_sse(gw, cursors.encode({(unique_topic, 0): 99}))
    try:
        assert status == 200, raw
        wait_for(lambda: _stats(gw)["readers"] == 1, "the reader")
        # 15,000+ records ahead of it: beyond the crowded window, and no reader may start
        sock, status, raw = _open_sse(gw, cursors.encode({(unique_topic, 0): 24999}))
        sock.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert status == 503 and b"\r\nRetry-After: 2\r\n" in head, raw[:300]
        assert json.loads(body[body.index(b"{"):])["key"] == "TOO_MANY_READERS"
        # at most 9,900 ahead of it (more than the share window): within the crowded
        # window, so it shares the reader
        client = SseClient(gw.url, "/s", headers={
            "Last-Event-ID": cursors.encode({(unique_topic, 0): 9999})})
        try:
            assert client.status == 200
            # the reader goes on once the blocker is cut as slow (stream_slow_client_ms)
            events = client.events(50, deadline=30)
            assert [cursors.parse(e["id"]) for e in events] == [
                {(unique_topic, 0): offset} for offset in range(10000, 10050)]
            assert all(e["data"] == RECORD.decode() for e in events)
            time.sleep(0.5)   # a stats line written after those events (every 200 ms)
            stats = _stats(gw)
            assert stats["readers"] == 1 and stats["readers_started"] == 1, stats
        finally:
            client.close()
    finally:
        blocker.close()


def test_a_client_further_ahead_than_the_share_window_gets_a_reader_of_its_own(
        gateway_factory, kafka_bootstrap, unique_topic):
    """Readers to spare: a client 1,000+ records ahead of a running reader (the default share
    window) does not wait for that reader to read up to it, it gets its own. (The first
    reader, whose client never reads, pauses some 5,000-8,000 records past its start: its
    client's buffer and socket, and its own read-ahead.)"""
    create_topic(kafka_bootstrap, unique_topic)
    _fill(kafka_bootstrap, unique_topic, 20000)
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=1,
                         env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200",
                              "EVGATE_STREAM_SLOW_CLIENT_MS": "60000"})
    blocker, status, raw = _open_sse(gw, cursors.encode({(unique_topic, 0): 99}))
    try:
        assert status == 200, raw
        wait_for(lambda: _stats(gw)["readers"] == 1, "the first reader")
        client = SseClient(gw.url, "/s", headers={
            "Last-Event-ID": cursors.encode({(unique_topic, 0): 14999})})
        try:
            assert client.status == 200
            # the first reader is paused by a client that never reads (cut only after a
            # minute): these records come from a reader of its own
            events = client.events(50, deadline=30)
            assert [cursors.parse(e["id"]) for e in events] == [
                {(unique_topic, 0): offset} for offset in range(15000, 15050)]
            # (the second may have become the live tail by now)
            wait_for(lambda: _stats(gw)["readers_started"] == 2, "a second reader started",
                     timeout=5)
        finally:
            client.close()
    finally:
        blocker.close()


def test_clients_resuming_near_one_position_share_one_consumer(gateway_factory,
                                                               kafka_bootstrap, unique_topic):
    """50 clients resuming within a few records of each other, one reader allowed: they share
    it (or the tail it becomes), each gets exactly the records after its own cursor."""
    create_topic(kafka_bootstrap, unique_topic)
    p = producer(kafka_bootstrap)
    for index in range(300):
        p.produce(unique_topic, f"r{index}".encode())
    assert p.flush(30) == 0
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=1,
                         env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200",
                              "EVGATE_STREAM_READERS_PER_API": "1"})
    clients = []
    try:
        for index in range(50):
            client = SseClient(gw.url, "/s", headers={
                "Last-Event-ID": cursors.encode({(unique_topic, 0): index * 5 - 1})})
            assert client.status == 200
            clients.append(client)
        stats = wait_for(lambda: (s := _stats(gw))["subscriptions"] == 50 and s,
                         "50 subscriptions")
        assert stats["readers"] + stats["tails"] <= 2, stats
        for index, client in enumerate(clients):
            events = client.events(300 - index * 5)
            assert [e["data"] for e in events] == [f"r{i}" for i in range(index * 5, 300)]
            assert cursors.parse(events[-1]["id"]) == {(unique_topic, 0): 299}
    finally:
        for client in clients:
            client.close()


def test_shared_readers_deliver_every_record_once_to_each_client(gateway_factory,
                                                                 kafka_bootstrap, unique_topic):
    """Clients joining a running reader at different positions get exactly what follows
    their cursor: nothing skipped, nothing repeated, ids that resume correctly."""
    create_topic(kafka_bootstrap, unique_topic, partitions=2)
    p = producer(kafka_bootstrap)
    for index in range(4000):
        p.produce(unique_topic, f"r{index}".encode(), partition=index % 2)
    assert p.flush(30) == 0
    gw = gateway_factory([stream_api("/g", [GET], kafka_endpoint(unique_topic))], workers=1,
                         env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200",
                              "EVGATE_STREAM_READERS_PER_API": "1"})
    # Two pollers: one from the start, one from the middle of both partitions; with one
    # reader per API allowed, the second shares the first's reader (or waits its turn).
    starts = [{(unique_topic, 0): -1, (unique_topic, 1): -1},
              {(unique_topic, 0): 999, (unique_topic, 1): 999}]
    cursors_now = [cursors.encode(s) for s in starts]
    seen: list[list[str]] = [[], []]
    done = [False, False]
    deadline = time.monotonic() + 60
    while not all(done) and time.monotonic() < deadline:
        for index in (0, 1):
            if done[index]:
                continue
            status, page = gw.json("GET", f"/g?cursor={cursors_now[index]}&limit=300",
                                   headers={"Accept": "application/json"})
            if status == 503:
                time.sleep(0.05)
                continue
            assert status == 200, page
            seen[index] += [item["content"] for item in page["items"]]
            cursors_now[index] = page["pagination"]["nextCursor"]
            done[index] = not page["items"]
    assert all(done)
    for index, start in enumerate(starts):
        expected = {f"r{i}" for i in range(4000) if i // 2 > start[(unique_topic, i % 2)]}
        assert len(seen[index]) == len(expected) and set(seen[index]) == expected
        for partition in (0, 1):   # in order within a partition
            numbers = [int(v[1:]) for v in seen[index] if int(v[1:]) % 2 == partition]
            assert numbers == sorted(numbers)


def test_cursor_naming_a_missing_partition_is_400(gateway_factory, kafka_bootstrap,
                                                  unique_topic):
    create_topic(kafka_bootstrap, unique_topic, partitions=2)
    gw = gateway_factory([stream_api("/s", [SSE, GET, WS], kafka_endpoint(unique_topic))],
                         workers=1)
    bad = cursors.encode({(unique_topic, 0): -1, (unique_topic, 7): 3})
    # twice: once checked by a new reader against Kafka, once against the partitions a
    # running consumer already knows
    for _ in range(2):
        status, page = gw.json("GET", f"/s?cursor={bad}", headers={"Accept": "application/json"})
        assert status == 400 and page["key"] == "INVALID_CURSOR", page
        assert f"{unique_topic}@7" in page["message"]
        sock, status, raw = _open_sse(gw, bad)
        sock.close()
        assert status == 400 and f"{unique_topic}@7".encode() in raw, raw[:400]
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"ws://127.0.0.1:{gw.port}/s?cursor={bad}", timeout=10)
        assert refused.value.status_code == 400
        assert json.loads(refused.value.resp_body)["key"] == "INVALID_CURSOR"
    # a good cursor on the same API still works
    good = cursors.encode({(unique_topic, 0): -1, (unique_topic, 1): -1})
    status, page = gw.json("GET", f"/s?cursor={good}", headers={"Accept": "application/json"})
    assert status == 200 and page["items"] == []


def test_sse_resume_through_a_backlog_is_complete_and_in_order(gateway_factory,
                                                               kafka_bootstrap, unique_topic):
    """A client slower than the gateway, resuming through a backlog: its reader pauses and
    resumes as the client drains, and the client gets every record once, in order."""
    create_topic(kafka_bootstrap, unique_topic)
    p = producer(kafka_bootstrap)
    for index in range(6000):
        p.produce(unique_topic, f"r{index}".encode())
    assert p.flush(30) == 0
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=1)
    # a client slower than the gateway: a small receive window, pauses while reading
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    conn.sock = socket.socket()
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    conn.sock.settimeout(30)
    conn.sock.connect(("127.0.0.1", gw.port))
    conn.request("GET", "/s", headers={"Accept": "text/event-stream", "Last-Event-ID":
                                       cursors.encode({(unique_topic, 0): 499})})
    response = conn.getresponse()
    data, ids = [], []
    try:
        deadline = time.monotonic() + 60
        while len(data) < 5500 and time.monotonic() < deadline:
            line = response.readline().decode().rstrip("\n")
            if line.startswith("data: "):
                data.append(line[6:])
                if len(data) % 200 == 0:
                    time.sleep(0.02)
            elif line.startswith("id: "):
                ids.append(line[4:])
    finally:
        conn.close()
    assert data == [f"r{i}" for i in range(500, 6000)]
    assert cursors.parse(ids[-1]) == {(unique_topic, 0): 5999}
