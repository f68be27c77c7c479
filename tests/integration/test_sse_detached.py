"""SSE fast-path streams taken over from the WSGI server (evgate/entrypoints/detached.py),
against real gunicorn and real Kafka: no greenlet per idle client, and nothing lost on the
way: records, heartbeats, the departed client noticed, the access log line written when the
stream really ends (its duration and bytes), goaway and a clean end of the chunked body on
SIGTERM, resumption by Last-Event-ID."""
from __future__ import annotations

import re
import threading
import time

import pytest

from tests.support.kafka_broker import create_topic
from tests.support.streams import (SseClient, kafka_endpoint, produce, stream_api,
                                   wait_stream_stats)

pytestmark = pytest.mark.integration

SSE = {"type": "sse", "configuration": {"heartbeatIntervalInMs": 300}}
STATS_ENV = {"EVGATE_STREAM_STATS_INTERVAL_MS": "200"}
_ACCESS = re.compile(r'"GET /s" 200 ([0-9.]+)ms (\d+)B api=\S+ entrypoint=sse tx=(\S+)')


def _access_lines(gw) -> list[tuple[float, int, str]]:
    return [(float(ms), int(size), tx) for ms, size, tx in
            _ACCESS.findall(gw.log_path.read_text(errors="replace"))]


def test_idle_streams_hold_no_greenlet_and_lose_nothing(gateway_factory, kafka_bootstrap,
                                                        unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=1,
                         env=STATS_ENV)
    first = SseClient(gw.url, "/s")
    base = wait_stream_stats(gw, lambda s: s["subscriptions"] == 1)
    clients = [SseClient(gw.url, "/s") for _ in range(60)]
    every = [first] + clients
    stats = wait_stream_stats(gw, lambda s: s["subscriptions"] == 61)
    # the greenlet path: one greenlet per client (+60); taken over: none
    assert stats["greenlets"] - base["greenlets"] < 10, (base, stats)

    produce(kafka_bootstrap, unique_topic, ["one", "two\nlines"])
    for client in every:
        events = client.events(2)
        assert [e["data"] for e in events] == ["one", "two\nlines"]
    last_id = events[-1]["id"]
    time.sleep(0.8)                   # idle: heartbeats from the hub's timers
    for client in (first, clients[-1]):
        line = b""
        while line != b":\n":
            line = client.response.readline()

    opened = time.monotonic()
    for client in clients[:30]:
        client.close()
    wait_stream_stats(gw, lambda s: s["subscriptions"] == 31, timeout=5)   # noticed within a second
    lines = _access_lines(gw)
    assert len(lines) == 30, lines
    frames = len(b"retry: 1000\n\n") + 2 * len(b"id: x\nevent: message\n\n")
    for duration_ms, size, _ in lines:
        assert duration_ms >= 700           # the stream's whole life, not its first chunk
        assert size > frames                # its records and heartbeats, not just retry:

    # resumption: a new client from the last id gets what was produced after it only
    produce(kafka_bootstrap, unique_topic, ["three"])
    resumed = SseClient(gw.url, "/s", headers={"Last-Event-ID": last_id})
    assert [e["data"] for e in resumed.events(1)] == ["three"]
    survivors = [first] + clients[30:]
    for client in survivors:
        assert [e["data"] for e in client.events(1)] == ["three"]
    assert time.monotonic() - opened < 30

    stopper = threading.Thread(target=gw.stop)
    stopper.start()
    try:
        for client in survivors + [resumed]:
            goaway = client.events(1, deadline=10)
            assert goaway[0]["event"] == "goaway"
            assert client.response.read() == b""   # the chunked body ended properly
    finally:
        stopper.join()
        for client in survivors + [resumed]:
            client.close()
    lines = _access_lines(gw)
    assert len(lines) == 30 + len(survivors) + 1, len(lines)
    assert len({tx for _, _, tx in lines}) == len(lines)


def test_slow_client_of_a_detached_stream_is_cut(gateway_factory, kafka_bootstrap,
                                                  unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=1,
                         env={**STATS_ENV, "EVGATE_STREAM_CLIENT_BUFFER": "20"})
    import socket
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", gw.port))
    slow.sendall(b"GET /s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    try:
        wait_stream_stats(gw, lambda s: s["subscriptions"] == 1)
        payload = "x" * 64000
        for round_ in range(10):
            produce(kafka_bootstrap, unique_topic, [f"{round_}-{i} {payload}" for i in range(30)])
            if "is too slow" in gw.log_path.read_text(errors="replace"):
                break
        wait_stream_stats(gw, lambda s: s["subscriptions"] == 0, timeout=15)
        assert "is too slow" in gw.log_path.read_text(errors="replace")
        slow.settimeout(10)
        while True:                      # the server hung up
            try:
                if not slow.recv(1 << 20):
                    break
            except ConnectionResetError:
                break
    finally:
        slow.close()
    wait_stream_stats(gw, lambda s: s["tails"] == 0 or s["subscriptions"] == 0)
    assert len(_access_lines(gw)) == 1


def test_handover_off_keeps_a_greenlet_per_stream(gateway_factory, kafka_bootstrap,
                                                  unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=1,
                         env={**STATS_ENV, "EVGATE_SSE_HANDOVER": "false"})
    first = SseClient(gw.url, "/s")
    base = wait_stream_stats(gw, lambda s: s["subscriptions"] == 1)
    clients = [SseClient(gw.url, "/s") for _ in range(20)]
    stats = wait_stream_stats(gw, lambda s: s["subscriptions"] == 21)
    assert stats["greenlets"] - base["greenlets"] >= 20, (base, stats)
    produce(kafka_bootstrap, unique_topic, ["one"])
    for client in [first] + clients:
        assert [e["data"] for e in client.events(1)] == ["one"]
        client.close()
