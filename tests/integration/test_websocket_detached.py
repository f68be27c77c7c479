"""Subscriber-only WebSockets taken over from the WSGI server (evgate/entrypoints/ws_detached.py)
against real gunicorn and real Kafka: no greenlet per idle client, records, pings, frames from
the client, the closing handshake, departed clients (no fd or greenlet left), refused frames
and handshakes, the access log line when the stream really ends; EVGATE_WS_HANDOVER=false
keeps the greenlet path."""
from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

import pytest
import websocket

from tests.support.kafka_broker import create_topic
from tests.support.streams import (kafka_endpoint, produce, stream_api,
                                   wait_stream_stats, ws_connect)

pytestmark = pytest.mark.integration

WS_SUB = {"type": "websocket", "configuration": {"publisher": {"enabled": False}}}
APP_ORIGIN = "https://app.example.com"
ENV = {"EVGATE_STREAM_STATS_INTERVAL_MS": "200", "EVGATE_MAX_MESSAGE_SIZE": "1000"}
_ACCESS = re.compile(r'"GET /ws" 101 ([0-9.]+)ms (\d+)B api=\S+ entrypoint=websocket')


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _raw_upgrade(gw, **headers) -> tuple[int, dict]:
    fields = {"Host": f"127.0.0.1:{gw.port}", "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    fields.update(headers)
    head = "GET /ws HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(head.encode())
        data = b""
        while True:
            part = sock.recv(65536)
            if not part:
                break
            data += part
            if b"\r\n\r\n" in data and b"}" in data:
                break
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1] or b"{}")


def _close_code(ws) -> int:
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big")


def _eof(ws) -> bool:
    ws.sock.settimeout(5)
    try:
        return ws.sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_idle_websockets_hold_no_greenlet_and_close_cleanly(gateway_factory, kafka_bootstrap,
                                                            unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    api = stream_api("/ws", [WS_SUB], kafka_endpoint(unique_topic))
    api["listeners"][0]["cors"] = {"enabled": True, "allowOrigin": [APP_ORIGIN]}
    gw = gateway_factory([api], workers=1, env=ENV)

    # refusals are answered before any subscription opens
    status, body = _raw_upgrade(gw, **{"Sec-WebSocket-Version": "8"})
    assert status == 400 and "Sec-WebSocket-Version" in json.dumps(body), body
    status, body = _raw_upgrade(gw, **{"Sec-WebSocket-Key": "c2hvcnQ="})
    assert status == 400 and "Sec-WebSocket-Key" in json.dumps(body), body
    status, body = _raw_upgrade(gw, Origin="https://evil.example.net")
    assert status == 403 and "CORS_ORIGIN_NOT_ALLOWED" in json.dumps(body), body

    first = ws_connect(gw)
    base = wait_stream_stats(gw, lambda s: s["subscriptions"] == 1)
    fds = _fds(base["pid"])
    clients = [ws_connect(gw) for _ in range(40)]
    stats = wait_stream_stats(gw, lambda s: s["subscriptions"] == 41)
    # the greenlet path: three greenlets per client (+120); taken over: none
    assert stats["greenlets"] - base["greenlets"] < 10, (base, stats)

    produce(kafka_bootstrap, unique_topic, ["one", "two"])
    for ws in [first] + clients:
        assert [ws.recv(), ws.recv()] == ["one", "two"]
    first.ping("are you there")
    assert first.recv_data(control_frame=True) == (websocket.ABNF.OPCODE_PONG,
                                                   b"are you there")
    first.send("a frame on a subscriber-only socket: dropped")
    produce(kafka_bootstrap, unique_topic, ["three"])
    assert first.recv() == "three"
    for ws in clients:
        assert ws.recv() == "three"

    time.sleep(0.6)
    for ws in clients[:20]:                       # the closing handshake
        ws.send_close(websocket.STATUS_NORMAL, b"bye")
        assert _close_code(ws) == 1000
        assert _eof(ws)
        ws.shutdown()
    for ws in clients[20:30]:                     # gone without a Close
        ws.sock.shutdown(socket.SHUT_RDWR)
        ws.sock.close()
    wait_stream_stats(gw, lambda s: s["subscriptions"] == 11, timeout=5)   # noticed at once
    lines = [(float(ms), int(size)) for ms, size in
             _ACCESS.findall(gw.log_path.read_text(errors="replace"))]
    assert len(lines) == 30, lines
    assert all(ms >= 500 and size > 3 * len("three") for ms, size in lines), lines

    big, bad = clients[30], clients[31]
    big.send("x" * 2000)                          # over EVGATE_MAX_MESSAGE_SIZE
    assert _close_code(big) == 1009
    bad.sock.sendall(b"\x81\x02hi")               # unmasked: a protocol error
    assert _close_code(bad) == 1002
    for ws in (big, bad):
        assert _eof(ws)
    for ws in clients[32:]:
        ws.close()
    stats = wait_stream_stats(gw, lambda s: s["subscriptions"] == 1, timeout=5)
    assert abs(_fds(base["pid"]) - fds) <= 2, (fds, _fds(base["pid"]))   # no fd left behind
    assert stats["greenlets"] - base["greenlets"] < 5, (base, stats)

    produce(kafka_bootstrap, unique_topic, ["four"])     # the worker still serves
    assert first.recv() == "four"
    first.close()
    assert gw.stop() == 0
    log = gw.log_path.read_text(errors="replace")
    for noise in ("Traceback", "Exception ignored", "Invalid HTTP method", "failed"):
        assert noise not in log, log[-3000:]


def test_handover_off_keeps_the_greenlet_path(gateway_factory, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/ws", [WS_SUB], kafka_endpoint(unique_topic))],
                         workers=1, env={**ENV, "EVGATE_WS_HANDOVER": "false"})
    first = ws_connect(gw)
    base = wait_stream_stats(gw, lambda s: s["subscriptions"] == 1)
    clients = [ws_connect(gw) for _ in range(10)]
    stats = wait_stream_stats(gw, lambda s: s["subscriptions"] == 11)
    assert stats["greenlets"] - base["greenlets"] >= 20, (base, stats)
    produce(kafka_bootstrap, unique_topic, ["one"])
    for ws in [first] + clients:
        assert ws.recv() == "one"
        ws.close()


def test_too_slow_client_is_cut_and_released(gateway_factory):
    gw = gateway_factory([stream_api("/ws", [WS_SUB], {
        "messageInterval": 20, "messageContent": "x" * 60000}, endpoint_type="mock")],
        workers=1, env={**ENV, "EVGATE_STREAM_CLIENT_BUFFER": "20"})
    keeper = ws_connect(gw)                         # a client that reads: keeps its stream
    assert keeper.recv().startswith("x")
    [pid] = [int(p) for p in Path(f"/proc/{gw.proc.pid}/task/{gw.proc.pid}/children")
             .read_text().split()]
    fds = _fds(pid)
    ws = ws_connect(gw)
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert ws.recv().startswith("x")
    deadline = time.monotonic() + 20
    while "too slow" not in gw.log_path.read_text(errors="replace"):   # not reading
        assert time.monotonic() < deadline, gw.log()
        assert keeper.recv().startswith("x")
    deadline = time.monotonic() + 5
    while _fds(pid) != fds:                       # its socket closed, nothing left behind
        assert time.monotonic() < deadline, (fds, _fds(pid))
        assert keeper.recv().startswith("x")
    # (the cut client would read what was in flight, then the end: megabytes through its
    # 4 KiB window, minutes; the closed fd above is the server's side of it)
    ws.sock.close()
    assert keeper.recv().startswith("x")          # the others go on
    keeper.close()
