"""Kafka lost mid-stream, on a private broker that the test stops and restarts: an SSE client
gets `event: error` and its stream ends, a WebSocket subscriber is closed with 1011; after the
restart the SSE client resumes with Last-Event-ID and gets exactly what was produced meanwhile
(no gap, no duplicate)."""
from __future__ import annotations

import time

import pytest
import websocket

from tests.support.kafka_broker import create_topic, private_broker
from tests.support.streams import SseClient, kafka_endpoint, produce, stream_api, stream_stats

pytestmark = pytest.mark.integration

SSE = {"type": "sse", "configuration": {"heartbeatIntervalInMs": 500}}
WS = {"type": "websocket", "configuration": {"publisher": {"enabled": False}}}


def _wait_subscriptions(gw, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = stream_stats(gw.log_path.read_text(errors="replace"))
        if stats and stats[-1]["subscriptions"] >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {count} subscriptions in time")


def _rest_of_stream(client: SseClient) -> list[dict]:
    """Every event until the server ends the stream (heartbeats are skipped)."""
    events = []
    while True:
        try:
            events.extend(client.events(1, deadline=60))
        except EOFError:
            return events


def test_kafka_lost_mid_stream_ends_streams_and_resume_has_no_gap(gateway_factory,
                                                                  unique_topic):
    with private_broker() as (bootstrap, broker):
        create_topic(bootstrap, unique_topic, partitions=2)
        gw = gateway_factory([stream_api("/s", [SSE], kafka_endpoint(unique_topic)),
                              stream_api("/ws", [WS], kafka_endpoint(unique_topic))],
                             workers=1, bootstrap=bootstrap,
                             env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200"})
        sse = SseClient(gw.url, "/s", timeout=60)
        ws = websocket.create_connection(f"ws://127.0.0.1:{gw.port}/ws", timeout=60)
        try:
            _wait_subscriptions(gw, 2)
            produce(bootstrap, unique_topic, [f"a{i}" for i in range(6)], partitions=2)
            before = sse.events(6)
            assert sorted(ws.recv() for _ in range(6)) == [f"a{i}" for i in range(6)]

            broker.stop()
            # The stream is not left hanging on heartbeats: an error event, then the end.
            tail = _rest_of_stream(sse)
            assert [e["event"] for e in tail] == ["error"]
            assert "Kafka" in tail[0]["data"]
            opcode, data = None, b""
            while opcode != websocket.ABNF.OPCODE_CLOSE:
                opcode, data = ws.recv_data(control_frame=True)
            assert int.from_bytes(data[:2], "big") == 1011
        finally:
            sse.close()
            ws.close()

        broker.start()
        produce(bootstrap, unique_topic, [f"b{i}" for i in range(6)], partitions=2)
        resumed = SseClient(gw.url, "/s", headers={"Last-Event-ID": before[-1]["id"]},
                            timeout=60)
        try:
            assert resumed.status == 200
            after = resumed.events(6, deadline=60)
            produce(bootstrap, unique_topic, ["c0", "c1"], partitions=2)
            after += resumed.events(2, deadline=60)
        finally:
            resumed.close()
    seen = [e["data"] for e in before + after]
    expected = [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)] + ["c0", "c1"]
    assert sorted(seen) == sorted(expected)              # no gap, no duplicate
    for partition in (0, 1):                             # in order within each partition
        mine = [v for v in seen if int(v[1:]) % 2 == partition]
        assert mine == [v for v in expected if int(v[1:]) % 2 == partition]
    log = gw.log_path.read_text(errors="replace")
    assert "kafka lost under" in log
