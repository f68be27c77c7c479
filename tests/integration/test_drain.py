"""SIGTERM under load: ingestion threads post continuously and SSE/WebSocket clients stream
while the gateway drains. Every 202 is in Kafka, no request is answered with anything but
202 or the draining 503, SSE clients get `event: goaway` and resume on a new gateway by
Last-Event-ID with no gap and no duplicate, a WebSocket client gets close code 1001."""
from __future__ import annotations

import http.client
import json
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.support.kafka_broker import consume_all, create_topic
from tests.support.streams import SseClient, kafka_endpoint, stream_api

pytestmark = pytest.mark.integration

SSE = {"type": "sse", "configuration": {"heartbeatIntervalInMs": 500}}


class Poster(threading.Thread):
    """Posts `t<n>-<i>` until the gateway stops answering; records every outcome."""

    def __init__(self, url: str, name: str):
        super().__init__(daemon=True)
        self.url, self.tag = url, name
        self.accepted: list[bytes] = []
        self.other: list[tuple[int, bytes]] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        index = 0
        while not self.stop.is_set() and self.errors < 20:
            body = f"{self.tag}-{index}".encode()
            index += 1
            request = urllib.request.Request(self.url, data=body, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    if response.status == 202:
                        self.accepted.append(body)
                    else:
                        self.other.append((response.status, response.read()))
            except urllib.error.HTTPError as exc:
                self.other.append((exc.code, exc.read()))
            except OSError:   # refused / reset once the listeners are closed
                self.errors += 1
                time.sleep(0.05)


class SseReader(threading.Thread):
    def __init__(self, url: str, path: str, last_id: str | None = None,
                 stop_after: int | None = None):
        super().__init__(daemon=True)
        headers = {"Last-Event-ID": last_id} if last_id else {}
        self.client = SseClient(url, path, headers=headers, timeout=60)
        self.events: list[dict] = []
        self.stop_after = stop_after
        self.ended: str | None = None

    def run(self) -> None:
        try:
            while self.stop_after is None or len(self.messages) < self.stop_after:
                [event] = self.client.events(1, deadline=60)
                self.events.append(event)
                if event.get("event") == "goaway":
                    self.ended = "goaway"
                    return
            self.ended = "enough"
        except EOFError:
            self.ended = "eof"
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            self.ended = f"error: {exc!r}"
        finally:
            self.client.close()

    @property
    def messages(self) -> list[dict]:
        return [e for e in self.events if e.get("event") == "message"]


def test_sigterm_under_load_loses_nothing_and_streams_resume(
        gateway_factory, kafka_bootstrap, unique_topic, database_url):
    import websocket   # websocket-client

    create_topic(kafka_bootstrap, unique_topic)
    api = stream_api("/drain", [{"type": "http-post"}, SSE, {"type": "websocket"}],
                     kafka_endpoint(unique_topic, consumer={"enabled": True,
                                                            "autoOffsetReset": "earliest"}))
    gw = gateway_factory([api], workers=2, env={"EVGATE_GRACEFUL_TIMEOUT": "20"})

    readers = [SseReader(gw.url, "/drain") for _ in range(3)]
    for reader in readers:
        assert reader.client.status == 200
        reader.start()
    ws = websocket.create_connection(gw.url.replace("http", "ws") + "/drain", timeout=30)
    posters = [Poster(gw.url + "/drain", f"t{n}") for n in range(4)]
    for poster in posters:
        poster.start()

    deadline = time.monotonic() + 30
    while sum(len(p.accepted) for p in posters) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(r.messages for r in readers), "SSE clients should be streaming before SIGTERM"

    # idle keep-alive connections (a load balancer's, a scraper's) must not hold the worker
    idle = []
    for port, path in ((gw.port, "/drain"), (gw.node_port, "/_node/health/liveness")):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path, headers={"Accept": "application/json"})
        conn.getresponse().read()
        idle.append(conn)

    gw.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    ws_close = None
    try:
        while True:   # read frames until the server's close frame
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                ws_close = int.from_bytes(data[:2], "big")
                break
    except websocket.WebSocketConnectionClosedException:
        pass
    finally:
        ws.close()
    assert gw.proc.wait(40) == 0
    drain_seconds = time.monotonic() - started
    for poster in posters:
        poster.stop.set()
        poster.join(30)
    for reader in readers:
        reader.join(30)

    # every 202 is in Kafka; everything else was the draining 503
    accepted = [body for p in posters for body in p.accepted]
    in_kafka = [r.value() for r in consume_all(kafka_bootstrap, unique_topic,
                                               len(accepted) + 10_000, timeout=15)]
    assert set(accepted) <= set(in_kafka), "an acknowledged record is missing from Kafka"
    for poster in posters:
        for status, body in poster.other:
            assert status == 503, (status, body)
            assert json.loads(body)["message"].startswith("The gateway is stopping")
    log = gw.log_path.read_text(errors="replace")
    assert "drain: in-flight requests finished" in log
    assert drain_seconds < 20, "the drain should not wait out the graceful timeout"
    assert "idle connections closed" in log
    for noise in ("Traceback", "Exception ignored", "ConcurrentObjectUseError"):
        assert noise not in log, f"{noise!r} in the log of the drained gateway"
    for conn in idle:
        conn.close()

    assert ws_close == 1001
    for reader in readers:
        assert reader.ended == "goaway", (reader.ended, reader.events[-3:])

    # resume on another gateway (same repository) from the last id each client saw
    second = gateway_factory((), db=database_url, workers=1)
    values = [v.decode() for v in in_kafka]
    for reader in readers:
        seen = [m["data"] for m in reader.messages]
        assert seen == values[:len(seen)], "an SSE client saw a gap or a reordering"
        rest = len(values) - len(seen)
        resumed = SseReader(second.url, "/drain", last_id=reader.messages[-1]["id"],
                            stop_after=rest)
        if rest:
            resumed.run()
            assert [m["data"] for m in resumed.messages] == values[len(seen):]
        else:
            resumed.client.close()
