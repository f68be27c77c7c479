"""SSE against real gunicorn and real Kafka: curl -N, resume by Last-Event-ID without gap or
duplicate, error statuses, goaway on shutdown, both gevent worker classes, connect/disconnect
cycles returning to baseline, a slow client cut while a fast one keeps streaming."""
from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from evgate.kafka import cursor as cursors
from tests.support.gateway import free_port
from tests.support.kafka_broker import create_topic
from tests.support.streams import (SseClient, kafka_endpoint, produce, producer, stream_api,
                                   stream_stats)

pytestmark = pytest.mark.integration

SSE = {"type": "sse", "configuration": {"heartbeatIntervalInMs": 1000,
                                        "metadataAsComment": True}}


def _wait_subscribed(gw, count=1, timeout=15.0):
    """Wait until the worker's stats say `count` clients are subscribed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = stream_stats(gw.log_path.read_text(errors="replace"))
        if stats and stats[-1]["subscriptions"] >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {count} subscriptions in time: {stats[-1:]}")


STATS_ENV = {"EVGATE_STREAM_STATS_INTERVAL_MS": "200"}


# HTTP/1.1: the fast path writes chunks straight to the socket; HTTP/1.0 (no chunking): every
# frame goes through the WSGI server (evgate/entrypoints/direct_writer.py).
@pytest.mark.parametrize("http_version", ["--http1.1", "--http1.0"])
def test_curl_streams_kafka_records(gateway_factory, kafka_bootstrap, unique_topic,
                                    http_version):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=1,
                         env=STATS_ENV)
    curl = subprocess.Popen(["curl", http_version, "-sN", "--max-time", "20", "-H",
                             "Accept: text/event-stream", gw.url + "/s"],
                            stdout=subprocess.PIPE, text=True)
    try:
        _wait_subscribed(gw)
        produce(kafka_bootstrap, unique_topic, ["one", "two\nlines"])
        lines = []
        while "data: lines" not in lines:
            lines.append(curl.stdout.readline().rstrip("\n"))
    finally:
        curl.kill()
        curl.wait()
    assert lines[0] == "retry: 1000"
    assert "data: one" in lines and "data: two" in lines and "data: lines" in lines
    assert ":offset: 1" in lines and f":topic: {unique_topic}" in lines
    ids = [line[4:] for line in lines if line.startswith("id: ")]
    assert cursors.parse(ids[-1]) == {(unique_topic, 0): 1}


def test_resume_by_last_event_id_has_no_gap_and_no_duplicate(gateway_factory, kafka_bootstrap,
                                                              unique_topic):
    create_topic(kafka_bootstrap, unique_topic, partitions=2)
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=2,
                         env=STATS_ENV)
    first = SseClient(gw.url, "/s")
    # A second client keeps the shared tail running, so the resumed one must catch up on its
    # own reader and then join it (or start its own tail, depending on the worker).
    other = SseClient(gw.url, "/s")
    try:
        _wait_subscribed(gw, 1)
        time.sleep(0.5)  # both workers may hold one client each
        produce(kafka_bootstrap, unique_topic, [f"a{i}" for i in range(6)], partitions=2)
        got = first.events(4)
    finally:
        first.close()
    last_id = got[-1]["id"]
    produce(kafka_bootstrap, unique_topic, [f"b{i}" for i in range(6)], partitions=2)
    resumed = SseClient(gw.url, "/s", headers={"Last-Event-ID": last_id})
    try:
        rest = resumed.events(8)
        produce(kafka_bootstrap, unique_topic, [f"c{i}" for i in range(4)], partitions=2)
        rest += resumed.events(4)
    finally:
        resumed.close()
        other.close()
    seen = [e["data"] for e in got + rest]
    expected = [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)] + [f"c{i}" for i in range(4)]
    assert sorted(seen) == sorted(expected)            # no gap, no duplicate
    for partition in (0, 1):                           # and in order within each partition
        mine = [v for v in seen if int(v[1:]) % 2 == partition]
        assert mine == [v for v in expected if int(v[1:]) % 2 == partition]


def test_bad_requests_and_unreachable_kafka(gateway_factory, kafka_bootstrap, unique_topic):
    dead = f"127.0.0.1:{free_port()}"
    gw = gateway_factory([
        stream_api("/s", [SSE], kafka_endpoint(unique_topic)),
        stream_api("/dead", [SSE], kafka_endpoint(unique_topic, bootstrapServers=dead)),
    ], workers=1, env={"EVGATE_KAFKA_CONSUMER_SETUP_TIMEOUT_MS": "1500"})
    status, _, body = gw.request("GET", "/s")
    assert status == 406 and json.loads(body)["http_status_code"] == 406
    status, _, body = gw.request("GET", "/s", headers={"Accept": "text/event-stream",
                                                       "Last-Event-ID": "not-a-cursor!"})
    assert status == 400 and "cursor" in json.loads(body)["message"]
    status, _, body = gw.request("GET", "/s", headers={"Accept": "text/event-stream",
                                                       "Last-Event-ID": "elsewhere@0#1"})
    assert status == 400
    status, headers, body = gw.request("GET", "/dead", headers={"Accept": "text/event-stream"})
    assert status == 503 and json.loads(body)["http_status_code"] == 503


@pytest.mark.parametrize("worker_class", ["gevent_pywsgi", "gevent"])
def test_mock_stream_heartbeat_and_goaway(gateway_factory, worker_class):
    mock = {"messageInterval": 300, "messageContent": "tick", "messageCount": 2}
    gw = gateway_factory([stream_api("/m", [{"type": "sse", "configuration": {
        "heartbeatIntervalInMs": 200}}], mock, endpoint_type="mock")], workers=1,
        worker_class=worker_class)
    client = SseClient(gw.url, "/m", headers={"Last-Event-ID": "0"})
    try:
        assert client.response.getheader("Content-Type").startswith("text/event-stream")
        assert client.response.getheader("Cache-Control") == "no-cache"
        assert client.response.getheader("X-Accel-Buffering") == "no"
        events = client.events(1)
        assert events[0]["id"] == "1" and events[0]["data"] == "tick"
        line = b""
        while line != b":\n":        # heartbeats once the mock's two messages are sent
            line = client.response.readline()
        stopper = threading.Thread(target=gw.stop)
        stopper.start()
        goaway = client.events(1, deadline=10)
        stopper.join()
    finally:
        client.close()
    assert goaway[0]["event"] == "goaway"


def test_connect_disconnect_cycles_return_to_baseline(gateway_factory, kafka_bootstrap,
                                                      unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=1,
                         env=STATS_ENV)
    keeper = SseClient(gw.url, "/s")       # keeps the shared tail up, as in production
    _wait_subscribed(gw, 1)
    time.sleep(0.5)
    baseline = stream_stats(gw.log_path.read_text())[-1]
    for _ in range(300):
        client = SseClient(gw.url, "/s")
        assert client.status == 200
        client.response.readline()          # retry: line
        client.close()
    time.sleep(1.5)                          # within a second every one is noticed and freed
    after = stream_stats(gw.log_path.read_text())[-1]
    keeper.close()
    assert after["subscriptions"] == baseline["subscriptions"] == 1
    assert after["tails"] == 1 and after["readers"] == 0
    assert after["greenlets"] <= baseline["greenlets"] + 3
    assert after["rss_kib"] - baseline["rss_kib"] < 16 * 1024
    time.sleep(1.5)                          # the last client left: the tail stops too
    assert stream_stats(gw.log_path.read_text())[-1]["tails"] == 0


def test_slow_client_is_cut_while_a_fast_one_keeps_streaming(gateway_factory, kafka_bootstrap,
                                                             unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic))], workers=1,
                         env={**STATS_ENV, "EVGATE_STREAM_CLIENT_BUFFER": "50"})
    import socket
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # before connect: small window
    slow.connect(("127.0.0.1", gw.port))
    slow.sendall(b"GET /s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    fast = SseClient(gw.url, "/s")
    # Rounds smaller than the buffer, each read by the fast client before the next is
    # produced: the fast client can never fall 50 behind however the machine schedules this
    # test, while the slow one (which never reads) exceeds its socket buffers (the server's
    # send buffer grows to 4 MiB on loopback) plus 50 messages well before the end.
    rounds, per_round, payload = 20, 30, "x" * 16000
    out = producer(kafka_bootstrap)
    events = []
    try:
        _wait_subscribed(gw, 2)
        for r in range(rounds):
            for i in range(r * per_round, (r + 1) * per_round):
                out.produce(unique_topic, f"{i} {payload}".encode())
            assert out.flush(15) == 0
            events += fast.events(per_round, deadline=60)
        assert [int(e["data"].split()[0]) for e in events] == list(range(rounds * per_round))
    finally:
        fast.close()
    log = gw.log_path.read_text()
    assert "is too slow" in log
    slow.settimeout(10)
    received = b""
    while True:                               # the server hung up on the slow client
        chunk = slow.recv(65536)
        if not chunk:
            break
        received += chunk
    slow.close()
    assert len(received) < rounds * per_round * 16000
