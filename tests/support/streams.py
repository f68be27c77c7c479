"""Helpers for the streaming tests (sse, websocket, http-get): API definitions, a raw SSE
client that can read a few events and hang up, a test-side producer, and the worker's
`stream stats` log lines."""
from __future__ import annotations

import http.client
import re
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
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})


def produce(bootstrap: str, topic: str, values: list[str], partitions: int = 1) -> None:
    p = producer(bootstrap)
    for index, value in enumerate(values):
        p.produce(topic, value.encode(), partition=index % partitions)
    assert p.flush(15) == 0


_STATS = re.compile(r"stream stats pid=(\d+) greenlets=(\d+) rss_kib=(\d+) tails=(\d+) "
                    r"readers=(\d+) subscriptions=(\d+) readers_started=(\d+)")


def stream_stats(log: str) -> list[dict[str, int]]:
    keys = ("pid", "greenlets", "rss_kib", "tails", "readers", "subscriptions",
            "readers_started")
    return [dict(zip(keys, map(int, m.groups()))) for m in _STATS.finditer(log)]
