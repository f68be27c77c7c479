"""Fan-out to more clients than one pass slice (evgate/core/stream.py FanoutWalk: the hub yields
between slices of 256 subscribers) over real gunicorn and real Kafka: SSE clients and WebSocket
clients (raw and envelope frames, both on the fast path, evgate/entrypoints/direct_writer.py)
get every record once, in order, with intact framing, also records produced in bursts (batches
joined into one write per client), and a client that resumes by id while records keep coming
gets exactly what follows its id. Raw sockets, parsed strictly: a frame split or interleaved by
two writers fails the parse."""
from __future__ import annotations

import base64
import json
import os
import re
import selectors
import socket
import time

import pytest

from tests.support.kafka_broker import create_topic
from tests.support.streams import kafka_endpoint, producer, stream_api, stream_stats
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

SSE_CLIENTS, WS_CLIENTS, ENVELOPE_CLIENTS = 200, 100, 40
RECORDS = 120


class RawClient:
    def __init__(self, port: int, path: str, kind: str, extra: str = ""):
        self.kind = kind
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setblocking(False)
        self.raw = bytearray()
        headers = {"sse": "Accept: text/event-stream\r\n",
                   "ws": "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
                         f"{base64.b64encode(os.urandom(16)).decode()}\r\n"}[
            "sse" if kind == "sse" else "ws"]
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}{extra}\r\n"
                          .encode())

    def read(self) -> None:
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            return
        if not data:
            raise AssertionError(f"{self.kind} client: the gateway closed the connection")
        self.raw += data

    def values(self) -> list[tuple[str, str]]:
        """(id, content) of every message so far; fails on broken framing."""
        head, sep, body = bytes(self.raw).partition(b"\r\n\r\n")
        if not sep:
            return []
        if self.kind == "sse":
            assert head.startswith(b"HTTP/1.1 200"), head
            text = b"".join(_dechunk(body)).decode()
            return re.findall(r"id: (\S+)\nevent: message\ndata: (\S+)\n\n", text)
        assert head.startswith(b"HTTP/1.1 101"), head
        out = []
        for opcode, payload in _ws_frames(body):
            assert opcode == 0x81, opcode
            if self.kind == "envelope":
                envelope = json.loads(payload)
                out.append((envelope["id"], envelope["content"]))
            else:
                out.append(("", payload.decode()))
        return out


def _dechunk(body: bytes) -> list[bytes]:
    out = []
    while body:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            break                                   # a chunk header still on its way
        size = int(size_line, 16)
        if len(rest) < size + 2:
            break
        assert rest[size:size + 2] == b"\r\n", "broken chunk framing"
        out.append(rest[:size])
        body = rest[size + 2:]
    return out


def _ws_frames(body: bytes) -> list[tuple[int, bytes]]:
    out = []
    while len(body) >= 2:
        opcode, size = body[0], body[1]
        assert size & 0x80 == 0, "a server frame must not be masked"
        at = 2
        if size == 126:
            size, at = int.from_bytes(body[2:4], "big"), 4
        elif size == 127:
            size, at = int.from_bytes(body[2:10], "big"), 10
        if len(body) < at + size:
            break
        out.append((opcode, body[at:at + size]))
        body = body[at + size:]
    return out


def _read_until(clients: list[RawClient], done, timeout: float) -> None:
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for key, _ in selector.select(0.2):
                key.data.read()
            if done():
                return
    finally:
        selector.close()


def test_many_sse_and_websocket_clients_get_every_record_once_in_order(
        gateway_factory, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    gw = gateway_factory([stream_api("/fan", [
        {"type": "sse", "configuration": {"heartbeatIntervalInMs": 60000}},
        {"type": "websocket", "configuration": {"publisher": {"enabled": False}}}],
        kafka_endpoint(unique_topic))], workers=1,
        env={"EVGATE_STREAM_STATS_INTERVAL_MS": "200",
             "EVGATE_WORKER_CONNECTIONS": "1000"})
    clients = ([RawClient(gw.port, "/fan", "sse") for _ in range(SSE_CLIENTS)]
               + [RawClient(gw.port, "/fan", "ws") for _ in range(WS_CLIENTS)]
               + [RawClient(gw.port, "/fan?envelope=true", "envelope")
                  for _ in range(ENVELOPE_CLIENTS)])
    total = len(clients)
    wait_for(lambda: any(s["subscriptions"] >= total
                         for s in stream_stats(gw.log_path.read_text(errors="replace"))),
             "every client subscribed", timeout=60)
    p = producer(kafka_bootstrap)
    expected = [f"r{i}" for i in range(RECORDS)]
    late: RawClient | None = None
    for burst in range(4):                   # bursts: the consumer hands over batches
        for value in expected[burst * 30:(burst + 1) * 30]:
            p.produce(unique_topic, value.encode())
        assert p.flush(15) == 0
        _read_until(clients, lambda: all(len(c.values()) >= (burst + 1) * 30
                                         for c in clients[:total]),
                    60)
        if burst == 1:
            # a client resuming by the id of r44 while the next bursts arrive
            last_id = clients[0].values()[44][0]
            late = RawClient(gw.port, "/fan", "sse", f"Last-Event-ID: {last_id}\r\n")
            clients.append(late)
    assert late is not None
    _read_until(clients, lambda: len(late.values()) >= RECORDS - 45, 60)
    time.sleep(0.5)                          # anything extra (a duplicate) would arrive now
    _read_until(clients, lambda: False, 0.5)
    for client in clients[:total]:
        assert [value for _, value in client.values()] == expected, client.kind
    assert [value for _, value in late.values()] == expected[45:]
    ids = [i for i, _ in clients[-2].values()]   # an envelope client: ids resume like SSE's
    assert ids == [i for i, _ in clients[0].values()]
    for client in clients:
        client.sock.close()
