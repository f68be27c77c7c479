"""Helpers for the streaming tests (sse, websocket, http-get): API definitions, a raw SSE
client that can read a few events and hang up, a test-side producer, and the worker's
`stream stats` log lines."""
from __future__ import annotations

import http.client
import re
import socket
import time
import uuid
from typing import Any

from confluent_kafka import Producer


def stream_api(path: str, entrypoints: list[dict[str, Any]], endpoint: dict[str, Any],
               endpoint_type: str = "kafka") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()), "name": f"stream {path}", "apiVersion": "1",
        "definitionVersion": "4.0.0", "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}], "entrypoints": entrypoints}],
        "endpointGroups": [{"name": "default", "type": endpoint_type, "endpoints": [
            {"name": "default", "type": endpoint_type, "configuration": endpoint}]}],
        "plans": [{"id": str(uuid.uuid4()), "name": "keyless",
                   "security": {"type": "key-less"}, "status": "published"}],
    }


def kafka_endpoint(topic: str, **extra: Any) -> dict[str, Any]:
    return {"topics": [topic], "consumer": {"enabled": True}, "producer": {"enabled": True},
            **extra}


class SseClient:
    """An SSE client on http.client: open, read N events, close (the server sees EOF)."""

    def __init__(self, url: str, path: str, headers: dict[str, str] | None = None,
                 timeout: float = 20.0):
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.retry: str | None = None

    def events(self, count: int, deadline: float = 20.0) -> list[dict[str, Any]]:
        """The next `count` events (each {"id", "event", "data", "comments"})."""
        out: list[dict[str, Any]] = []
        event: dict[str, Any] = {"data": [], "comments": []}
        end = time.monotonic() + deadline
        while len(out) < count:
            if time.monotonic() > end:
                raise TimeoutError(f"got {len(out)} of {count} events")
            line = self.response.readline()
            if not line:
                raise EOFError(f"stream ended after {len(out)} events: {out[-1:]}")
            text = line.decode("utf-8").rstrip("\n")
            if text == "":
                if event.get("event") or event["data"]:
                    event["data"] = "\n".join(event["data"])
                    out.append(event)
                event = {"data": [], "comments": []}
            elif text.startswith("retry:"):
                self.retry = text[6:].strip()
            elif text.startswith(":"):
                event["comments"].append(text)
            else:
                name, _, value = text.partition(": ")
                if name == "data":
                    event["data"].append(value)
                else:
                    event[name] = value
        return out

    def close(self) -> None:
        self.conn.close()


def producer(bootstrap: str) -> Producer:
    """Idempotent: a produce retried after an error (typically the first one to a topic just
    created, before every broker knows its leader) must not land after the records sent
    behind it. Without idempotence it could, and a partition then held r108 at offset 0:
    tests that check the order of what they produced failed on data Kafka stored so."""
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all",
                     "enable.idempotence": True, "on_delivery": _stored})


def _stored(error: Any, message: Any) -> None:
    """The producers' delivery report: a record Kafka did not store fails the test at
    flush() (confluent-kafka raises a callback's exception there), naming the error,
    instead of a test later blaming the gateway for a record that never was in Kafka."""
    if error is not None:
        raise AssertionError(f"test record for {message.topic()}[{message.partition()}] not "
                             f"stored by Kafka: {error}")


def produce(bootstrap: str, topic: str, values: list[str], partitions: int = 1) -> None:
    p = producer(bootstrap)
    for index, value in enumerate(values):
        p.produce(topic, value.encode(), partition=index % partitions)
    assert p.flush(15) == 0


_STATS = re.compile(r"stream stats ((?:\w+=-?\d+ ?)+)")


def stream_stats(log: str) -> list[dict[str, int]]:
    """Every `stream stats` line of a worker log, as {field: value}: pid, greenlets, rss_kib
    and every field of the consumer pool's stats (tails, readers, spares, ...)."""
    return [{key: int(value) for key, value in (field.split("=") for field in m.group(1).split())}
            for m in _STATS.finditer(log)]


def socket_pair() -> tuple[Any, Any]:
    """(server, client) gevent sockets with small buffers, so that the server's side fills
    soon (the detached stream tests: blocked writes, slow clients)."""
    from gevent import socket as gsocket
    server, client = gsocket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return server, client


def fd_identity(fd: int) -> tuple[int, int]:
    """What an open descriptor refers to (device, inode): for `assert_fd_released`."""
    import os
    status = os.fstat(fd)
    return status.st_dev, status.st_ino


def assert_fd_released(fd: int, identity: tuple[int, int]) -> None:
    """The descriptor was closed. Its number may already serve another file (anything in
    the process may open one meanwhile: a client library's thread, the hub), so the check
    is that it no longer refers to the same socket, not that the number is free."""
    import os
    try:
        assert fd_identity(fd) != identity, f"fd {fd} still refers to the stream's socket"
    except OSError:
        pass


def wait_stream_stats(gw: Any, condition: Any, timeout: float = 15.0) -> dict[str, int]:
    """The worker's latest `stream stats` line once `condition` holds for it; AssertionError
    naming the last line seen after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    stats: list[dict[str, int]] = []
    while time.monotonic() < deadline:
        stats = stream_stats(gw.log_path.read_text(errors="replace"))
        if stats and condition(stats[-1]):
            return stats[-1]
        time.sleep(0.1)
    raise AssertionError(f"stream stats never matched: {stats[-1:]}")


def ws_connect(gw: Any, path: str = "/ws") -> Any:
    """A websocket-client connection to `path` without an Origin header."""
    import websocket
    return websocket.create_connection(f"ws://127.0.0.1:{gw.port}{path}", timeout=15,
                                       suppress_origin=True)


def open_raw_sse(port: int, path: str, cursor: str) -> tuple[socket.socket, int, bytes]:
    """An SSE client resuming at `cursor` that reads the response head (and a short error
    body) and then never reads again: (socket, status, what it read). Its 4 KiB receive
    buffer makes the server's socket fill soon."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                 f"Last-Event-ID: {cursor}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        if not data:
            break
        head += data
    status = int(head.split(b" ", 2)[1])
    body = b""
    if status != 200:
        while True:   # error answers are short and end with the connection or the length
            data = sock.recv(65536)
            if not data:
                break
            body += data
            if body.rstrip().endswith(b"}"):
                break
    return sock, status, head + body


def dechunk(raw: bytes) -> list[bytes]:
    """The chunks of an HTTP/1.1 chunked body, asserting the framing of each."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n")
        length = int(head, 16)
        assert rest[length:length + 2] == b"\r\n", "broken chunk framing"
        out.append(rest[:length])
        raw = rest[length + 2:]
    return out
