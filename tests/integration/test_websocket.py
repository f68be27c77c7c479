"""WebSocket against real gunicorn and real Kafka: websocat and websocket-client subscribers,
publisher frames landing in Kafka (acknowledged in order), both gevent worker classes."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import websocket

from tests.support.kafka_broker import consume_all, create_topic
from tests.support.streams import kafka_endpoint, produce, stream_api, stream_stats

pytestmark = pytest.mark.integration

WEBSOCAT = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "websocat"
MOCK = {"messageInterval": 100, "messageContent": "mock message", "messageCount": 3}


def test_websocat_receives_mock_messages(gateway_factory):
    gw = gateway_factory([stream_api("/demo/ws", [{"type": "websocket"}], MOCK,
                                     endpoint_type="mock")], workers=1)
    out = subprocess.run(["timeout", "10", str(WEBSOCAT), "-U", "-n", "-t",  # -n: no Close on stdin EOF
                          f"ws://127.0.0.1:{gw.port}/demo/ws"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert out.stdout.splitlines() == ["mock message"] * 3   # then a normal close (1000)


@pytest.mark.parametrize("worker_class", ["gevent_pywsgi", "gevent"])
def test_publish_and_subscribe_through_kafka(gateway_factory, kafka_bootstrap, unique_topic,
                                             worker_class):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/ws", [{"type": "websocket"}],
                                     kafka_endpoint(unique_topic))],
                         workers=1, worker_class=worker_class,
                         env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200"})
    ws = websocket.create_connection(f"ws://127.0.0.1:{gw.port}/ws", timeout=15)
    try:
        deadline = time.monotonic() + 15
        while not any(s["subscriptions"] for s in stream_stats(gw.log_path.read_text())):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for i in range(5):
            ws.send(f"frame {i}")
        ws.send_binary(b"\xff\x00binary")
        received = [ws.recv() for _ in range(6)]
        produce(kafka_bootstrap, unique_topic, ["from kafka"])
        received.append(ws.recv())
    finally:
        ws.close()
    assert received[:5] == [f"frame {i}" for i in range(5)]
    assert received[5] == b"\xff\x00binary" and received[6] == "from kafka"
    records = consume_all(kafka_bootstrap, unique_topic, 7)
    assert [r.value() for r in records][:6] == [f"frame {i}".encode() for i in range(5)] + [
        b"\xff\x00binary"]


def test_shutdown_closes_with_going_away(gateway_factory):
    gw = gateway_factory([stream_api("/ws", [{"type": "websocket", "configuration": {
        "publisher": {"enabled": False}}}], {"messageInterval": 200}, endpoint_type="mock")],
        workers=1)
    ws = websocket.create_connection(f"ws://127.0.0.1:{gw.port}/ws", timeout=15)
    try:
        assert ws.recv() == "mock message"
        import threading
        stopper = threading.Thread(target=gw.stop)
        stopper.start()
        opcode, data = None, b""
        while opcode != websocket.ABNF.OPCODE_CLOSE:
            opcode, data = ws.recv_data(control_frame=True)
        stopper.join()
    finally:
        ws.close()
    assert int.from_bytes(data[:2], "big") == 1001


@pytest.mark.parametrize("worker_class", ["gevent_pywsgi", "gevent"])
def test_clients_leaving_leave_a_clean_log(gateway_factory, worker_class):
    """A slow client makes the server block writing while simple-websocket's reader answers
    its pings (two writers on one socket: ConcurrentObjectUseError before the fix), then
    leaves with a close frame (which pywsgi must not read as a next HTTP request) or by
    aborting. After SIGTERM, the log has no error, traceback or interpreter-exit noise."""
    import socket

    gw = gateway_factory([stream_api("/ws", [{"type": "websocket"}], {
        "messageInterval": 5, "messageContent": "x" * 60000}, endpoint_type="mock")],
        workers=1, worker_class=worker_class)
    for leave in ("close", "abort"):
        ws = websocket.create_connection(f"ws://127.0.0.1:{gw.port}/ws", timeout=15)
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        assert ws.recv().startswith("x")
        time.sleep(0.5)   # not reading: the server's writes block
        for _ in range(5):
            ws.ping(b"p")
        time.sleep(0.3)
        if leave == "close":
            ws.close()
        else:
            ws.sock.shutdown(socket.SHUT_RDWR)
            ws.sock.close()
    # the gateway still serves WebSockets on the same worker
    ws = websocket.create_connection(f"ws://127.0.0.1:{gw.port}/ws", timeout=15)
    assert ws.recv().startswith("x")
    ws.close()
    assert gw.stop() == 0
    log = gw.log_path.read_text(errors="replace")
    for noise in ("ConcurrentObjectUseError", "Traceback", "Exception ignored",
                  "Invalid HTTP method", "Exception in thread"):
        assert noise not in log, log[-3000:]
