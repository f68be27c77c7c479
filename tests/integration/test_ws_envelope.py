"""Resumable WebSocket (`?envelope=true`) and tombstones against real gunicorn and real Kafka:
resume by the envelope's id with no gap and no duplicate (also after every worker was
SIGKILLed), and a null-value record on SSE, the WebSocket envelope and http-get."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import websocket
from confluent_kafka import Producer

from evgate.kafka import cursor as cursors
from tests.support.kafka_broker import create_topic
from tests.support.streams import SseClient, kafka_endpoint, stream_api, stream_stats
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def _produce(bootstrap, topic, records, partitions=1):
    """records: (key, value) pairs; value None is a tombstone."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
    for index, (key, value) in enumerate(records):
        producer.produce(topic, value=value, key=key, partition=index % partitions)
    assert producer.flush(15) == 0


def _subscribed(gw, count=1):
    wait_for(lambda: any(s["subscriptions"] >= count
                         for s in stream_stats(gw.log_path.read_text())[-4:]),
             "the gateway to report the WebSocket subscription")


def _envelopes(ws, count):
    frames = [json.loads(ws.recv()) for _ in range(count)]
    assert all(isinstance(f, dict) and {"id", "content", "headers", "metadata"} <= f.keys()
               for f in frames), frames
    return frames


def _ws(gw, query, timeout=15):
    return websocket.create_connection(f"ws://127.0.0.1:{gw.port}/ws?{query}", timeout=timeout)


def _no_more_frames(ws, seconds=1.5):
    ws.settimeout(seconds)
    try:
        extra = ws.recv()
    except websocket.WebSocketTimeoutException:
        return True
    raise AssertionError(f"unexpected extra frame {extra!r}")


def test_envelope_resume_has_no_gap_and_no_duplicate(gateway_factory, kafka_bootstrap,
                                                     unique_topic):
    create_topic(kafka_bootstrap, unique_topic, partitions=2)
    gw = gateway_factory([stream_api("/ws", [{"type": "websocket", "configuration": {
        "publisher": {"enabled": False}}}], kafka_endpoint(unique_topic))], workers=1,
        env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200"})
    ws = _ws(gw, "envelope=true")
    try:
        _subscribed(gw)
        _produce(kafka_bootstrap, unique_topic,
                 [(f"k{i}".encode(), f"m{i}".encode()) for i in range(6)], partitions=2)
        first = _envelopes(ws, 3)
    finally:
        ws.close()
    assert {f["metadata"]["topic"] for f in first} == {unique_topic}
    assert all(isinstance(f["metadata"]["timestamp"], int) for f in first)
    assert all(f["metadata"]["key"] == "k" + f["content"][1:] for f in first)
    _produce(kafka_bootstrap, unique_topic,
             [(None, f"m{i}".encode()) for i in range(6, 10)], partitions=2)
    ws = _ws(gw, f"envelope=true&cursor={first[-1]['id']}")
    try:
        rest = _envelopes(ws, 7)
        _no_more_frames(ws)
    finally:
        ws.close()
    contents = [f["content"] for f in first + rest]
    assert sorted(contents, key=lambda c: int(c[1:])) == [f"m{i}" for i in range(10)]
    # without the envelope the frames stay the raw payload
    ws = _ws(gw, f"cursor={rest[-1]['id']}")
    try:
        _produce(kafka_bootstrap, unique_topic, [(None, b"raw")])
        assert ws.recv() == "raw"
    finally:
        ws.close()


def _worker_pids(master):
    return [int(p) for p in
            Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def test_envelope_resume_after_every_worker_was_killed(gateway_factory, kafka_bootstrap,
                                                       unique_topic):
    create_topic(kafka_bootstrap, unique_topic, partitions=2)
    gw = gateway_factory([stream_api("/ws", [{"type": "websocket", "configuration": {
        "publisher": {"enabled": False}}}], kafka_endpoint(unique_topic))], workers=2,
        env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200"})
    ws = _ws(gw, "envelope=true")
    try:
        _subscribed(gw)
        _produce(kafka_bootstrap, unique_topic,
                 [(None, f"m{i}".encode()) for i in range(4)], partitions=2)
        first = _envelopes(ws, 4)
        before = _worker_pids(gw.proc.pid)
        assert len(before) == 2
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises((websocket.WebSocketException, OSError)):
            ws.settimeout(10)
            ws.recv()
    finally:
        ws.close()
    _produce(kafka_bootstrap, unique_topic,
             [(None, f"m{i}".encode()) for i in range(4, 10)], partitions=2)
    wait_for(lambda: len(set(_worker_pids(gw.proc.pid)) - set(before)) == 2,
             "gunicorn to fork two new workers", timeout=30)

    def reconnect():
        try:
            return _ws(gw, f"envelope=true&cursor={first[-1]['id']}")
        except (websocket.WebSocketException, OSError):
            return None
    ws = wait_for(reconnect, "the gateway to accept WebSockets again", timeout=30)
    try:
        rest = _envelopes(ws, 6)
        _no_more_frames(ws)
    finally:
        ws.close()
    contents = [f["content"] for f in first + rest]
    assert sorted(contents, key=lambda c: int(c[1:])) == [f"m{i}" for i in range(10)]
    assert len(set(contents)) == 10


def test_tombstones_on_every_entrypoint(gateway_factory, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    api = stream_api("/ws", [{"type": "websocket", "configuration": {
        "publisher": {"enabled": False}}}, {"type": "sse"},
        {"type": "http-get", "configuration": {"messagesLimitDurationMs": 1000,
                                               "metadataInPayload": True}}],
        kafka_endpoint(unique_topic))
    gw = gateway_factory([api], workers=1)
    _produce(kafka_bootstrap, unique_topic, [(b"k1", b"v1"), (b"k1", None), (b"k2", b"")])
    start = cursors.encode({(unique_topic, 0): -1})      # from the beginning

    sse = SseClient(gw.url, "/ws", headers={"Last-Event-ID": start})
    try:
        events = sse.events(3)
    finally:
        sse.close()
    assert [(e["event"], e["data"]) for e in events] == [
        ("message", "v1"), ("delete", '{"key": "k1"}'), ("message", "")]
    assert all(e["id"] for e in events)

    ws = _ws(gw, f"envelope=true&cursor={start}")
    try:
        frames = _envelopes(ws, 3)
    finally:
        ws.close()
    assert frames[1]["deleted"] is True and frames[1]["content"] is None
    assert frames[1]["metadata"]["key"] == "k1" and frames[1]["metadata"]["offset"] == 1
    assert frames[1]["id"] == events[1]["id"]        # the same cursor as SSE
    assert "deleted" not in frames[0] and "deleted" not in frames[2]
    assert frames[2]["content"] == ""

    # raw frames: the tombstone has no raw form and is skipped, the empty value is a frame
    ws = _ws(gw, f"cursor={start}")
    try:
        assert [ws.recv(), ws.recv()] == ["v1", ""]
        _no_more_frames(ws, 1)
    finally:
        ws.close()

    status, _, body = gw.request("GET", f"/ws?cursor={start}&limit=3",
                                 headers={"Accept": "application/json"})
    assert status == 200
    items = json.loads(body)["items"]
    assert [i["content"] for i in items] == ["v1", None, ""]
    assert items[1]["deleted"] is True and items[1]["id"] == events[1]["id"]
    assert items[1]["metadata"]["key"] == "k1"
    assert isinstance(items[1]["metadata"]["timestamp"], int)
