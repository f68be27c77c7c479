"""WebSockets whose publisher is enabled (Gravitee's default), taken over from the WSGI server
(evgate/entrypoints/ws_detached.py, EVGATE_WS_HANDOVER_PUBLISHER), against real gunicorn and
real Kafka: no greenlet per idle client, the client's frames in Kafka in order and once each,
an oversized frame closed with 1009 and not produced, a failed produce answered as on the
greenlet path (1011, the same log line)."""
from __future__ import annotations

import pytest
import websocket

from tests.support.kafka_broker import consume_all, create_topic
from tests.support.streams import (kafka_endpoint, stream_api,
                                   wait_stream_stats, ws_connect)

pytestmark = pytest.mark.integration

WS = {"type": "websocket"}                        # publisher and subscriber enabled
ENV = {"EVGATE_STREAM_STATS_INTERVAL_MS": "200", "EVGATE_MAX_MESSAGE_SIZE": "1000"}


def _close_frame(ws) -> tuple[int, bytes]:
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big"), data[2:]


def test_publisher_sockets_hold_no_greenlet_and_publish_in_order_once(
        gateway_factory, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/ws", [WS], kafka_endpoint(unique_topic))],
                         workers=1, env=ENV)
    first = ws_connect(gw)
    base = wait_stream_stats(gw, lambda s: s["subscriptions"] == 1)
    clients = [ws_connect(gw) for _ in range(30)]
    stats = wait_stream_stats(gw, lambda s: s["subscriptions"] == 31)
    # the greenlet path: three greenlets per client (+90); taken over: none while idle
    assert stats["greenlets"] - base["greenlets"] < 10, (base, stats)

    sent = []
    for i in range(60):                           # as fast as the client can
        if i % 4 == 3:
            payload = bytes([i, 0xff, 0x00])
            first.send_binary(payload)
        else:
            payload = f"frame {i}".encode()
            first.send(payload.decode())
        sent.append(payload)
    first.ping("still there")                     # answered after the publishes
    records = consume_all(kafka_bootstrap, unique_topic, len(sent) + 1, timeout=8)
    assert [r.value() for r in records] == sent   # in order, each once (nothing more)
    got = []
    while len(got) < len(sent):                   # the subscribers get them back from Kafka
        opcode, data = first.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_PONG:
            assert data == b"still there"
            continue
        got.append(data)
    assert got == sent
    for ws in clients[:3]:
        assert [ws.recv() for _ in range(2)] == ["frame 0", "frame 1"]

    big = clients[3]
    big.send("x" * 2000)                          # over EVGATE_MAX_MESSAGE_SIZE
    assert _close_frame(big)[0] == 1009
    big.close()
    clients[4].send("after the big one")
    records = consume_all(kafka_bootstrap, unique_topic, len(sent) + 2, timeout=8)
    assert [r.value() for r in records] == sent + [b"after the big one"]

    stats = wait_stream_stats(gw, lambda s: s["subscriptions"] == 30)
    assert stats["greenlets"] - base["greenlets"] < 10, (base, stats)   # publishers gone
    for ws in [first] + clients[4:]:
        ws.send_close(websocket.STATUS_NORMAL, b"bye")
        assert _close_frame(ws)[0] == 1000
        ws.shutdown()
    for ws in clients[:3]:
        ws.close()
    wait_stream_stats(gw, lambda s: s["subscriptions"] == 0, timeout=5)
    assert gw.stop() == 0
    log = gw.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "failed" not in log, log[-3000:]


@pytest.mark.parametrize("handover", ["true", "false"])
def test_a_failed_produce_closes_with_1011_as_on_the_greenlet_path(
        gateway_factory, kafka_bootstrap, unique_topic, handover):
    create_topic(kafka_bootstrap, unique_topic)
    endpoint = kafka_endpoint(unique_topic, producer={"enabled": True,
                                                      "topics": ["not a topic name!"]})
    gw = gateway_factory([stream_api("/ws", [WS], endpoint)], workers=1,
                         env={**ENV, "EVGATE_PRODUCE_TIMEOUT_MS": "1500",
                              "EVGATE_WS_HANDOVER_PUBLISHER": handover})
    ws = ws_connect(gw)
    wait_stream_stats(gw, lambda s: s["subscriptions"] == 1)
    ws.send("refused")
    ws.send("never read")
    code, reason = _close_frame(ws)
    assert (code, reason) == (1011, b"the message could not be produced")
    ws.close()
    wait_stream_stats(gw, lambda s: s["subscriptions"] == 0, timeout=5)
    log = gw.log_path.read_text(errors="replace")
    assert log.count("websocket publish failed") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


def test_publish_flow_policies_read_the_upgrade_request_on_a_handed_over_socket(
        gateway_factory, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    api = stream_api("/ws", [WS], kafka_endpoint(unique_topic))
    api["flows"] = [{"name": "publish", "selectors": [{"type": "channel", "channel": "/"}],
                     "publish": [
                         {"policy": "message-filtering", "configuration": {
                             "filter": "{#message.content != 'drop me'}"}},
                         {"policy": "transform-headers", "configuration": {"addHeaders": [
                             {"name": "x-source",
                              "value": "gw-{#request.headers['X-Src'][0]}"}]}}]}]
    gw = gateway_factory([api], workers=1, env=ENV)
    base_ws = ws_connect(gw)
    base = wait_stream_stats(gw, lambda s: s["subscriptions"] == 1)
    ws = websocket.create_connection(f"ws://127.0.0.1:{gw.port}/ws", timeout=15,
                                     suppress_origin=True, header=["X-Src: client-7"])
    stats = wait_stream_stats(gw, lambda s: s["subscriptions"] == 2)
    assert stats["greenlets"] - base["greenlets"] < 2, (base, stats)   # handed over
    for text in ("one", "drop me", "two"):
        ws.send(text)
    records = consume_all(kafka_bootstrap, unique_topic, 3, timeout=6)
    assert [r.value() for r in records] == [b"one", b"two"]   # the filter dropped one
    assert all(dict(r.headers() or [])["x-source"] == b"gw-client-7" for r in records)
    assert [ws.recv(), ws.recv()] == ["one", "two"]
    for client in (ws, base_ws):
        client.close()
