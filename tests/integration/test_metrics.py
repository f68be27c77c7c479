"""/_node/metrics on the node port of a real 2-worker gateway: values move with traffic and the
multiprocess sum is the same whichever worker answers the scrape; node paths are not served
on the public port; no per-client label."""
from __future__ import annotations

import os
import re
import signal
import time

import pytest

from evgate.observability import metrics
from tests.support.kafka_broker import create_topic
from tests.support.streams import SseClient, kafka_endpoint, stream_api

pytestmark = pytest.mark.integration

_SAMPLE = re.compile(r'^(\w+)\{([^}]*)\} ([0-9.e+-]+)$')


def scrape(gateway) -> dict[tuple[str, frozenset], float]:
    status, headers, body = gateway.node_request("/_node/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    samples = {}
    for line in body.decode().splitlines():
        match = _SAMPLE.match(line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def value(samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def wait_value(gateway, name: str, expected: float, timeout: float = 20.0, **labels: str):
    """Poll scrapes until the (summed) value is `expected` (records out are flushed each
    second; gauges move when the server notices a client left)."""
    deadline = time.monotonic() + timeout
    while True:
        current = value(scrape(gateway), name, **labels)
        if current == expected or time.monotonic() > deadline:
            return current
        time.sleep(0.2)


@pytest.fixture
def gateway(gateway_factory, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    api = stream_api("/metered", [{"type": "http-post"}, {"type": "sse"}],
                     kafka_endpoint(unique_topic))
    gw = gateway_factory([api], workers=2)
    gw.api_id = api["id"]
    return gw


def _served_by(gateway) -> set[str]:
    """The worker pids that logged a 202 for /metered (access lines are written in batches,
    evgate.logs.BatchingStreamHandler: wait one flush interval first)."""
    time.sleep(0.5)
    return set(re.findall(r"\[(\d+)\] evgate\.access: .*\"POST /metered\" 202", gateway.log()))


def _workers(gateway) -> set[str]:
    pid = gateway.proc.pid
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return set(children.read().split())


def test_requests_and_records_in_are_summed_across_workers_node_port_only(gateway):
    api = gateway.api_id
    from concurrent.futures import ThreadPoolExecutor

    def send_round(start: int, count: int) -> None:
        statuses = list(pool.map(
            lambda i: gateway.request("POST", "/metered", f"m{i}".encode())[0],
            range(start, start + count)))
        assert statuses == [202] * count

    # The kernel decides which worker accepts a connection, and on a quiet box one worker may
    # win them all: the worker(s) that served are stopped (SIGSTOP) while one more round is
    # sent, so the other one must accept it; then they go on (SIGCONT).
    workers = _workers(gateway)
    assert len(workers) == 2, workers
    with ThreadPoolExecutor(8) as pool:
        send_round(0, 24)
        sent, pids = 24, _served_by(gateway)
        if len(pids) < 2:
            for pid in pids:
                os.kill(int(pid), signal.SIGSTOP)
            try:
                send_round(sent, 8)
            finally:
                for pid in pids:
                    os.kill(int(pid), signal.SIGCONT)
            sent, pids = sent + 8, _served_by(gateway)
    assert gateway.request("GET", "/no-such-api")[0] == 404
    assert pids == workers, f"both workers should have served requests ({sent} sent)"

    # Each worker writes its request counts to the shared files once a second (and before a
    # scrape it answers itself, metrics.FLUSH_INTERVAL_S): after that every count is in.
    time.sleep(metrics.FLUSH_INTERVAL_S + 0.5)
    for _ in range(4):   # each scrape may be answered by either worker: always the same sum
        samples = scrape(gateway)
        assert value(samples, "evgate_requests_total", api=api, entrypoint="http-post",
                     status="202") == sent
        assert value(samples, "evgate_records_in_total", api=api, entrypoint="http-post") == sent
        assert value(samples, "evgate_produce_latency_seconds_count", api=api) == sent
        assert value(samples, "evgate_requests_total", api="-", status="404") >= 1
    text = gateway.node_request("/_node/metrics")[2].decode()
    assert "127.0.0.1" not in text   # no client address as a label

    # node paths are not served on the public port, and the node port serves nothing else
    for path in ("/_node/metrics", "/_node/health", "/_node/health/liveness"):
        status, _headers, body = gateway.request("GET", path)
        assert status == 404, path
        assert b"evgate_" not in body and b"UP" not in body
    assert gateway.node_request("/metered")[0] == 404


def test_open_connections_and_records_out_follow_an_sse_client(gateway):
    api = gateway.api_id
    client = SseClient(gateway.url, "/metered")
    try:
        assert client.status == 200
        assert wait_value(gateway, "evgate_open_connections", 1, api=api,
                          entrypoint="sse") == 1
        for index in range(5):
            assert gateway.request("POST", "/metered", f"e{index}".encode())[0] == 202
        events = client.events(5)
        assert [e["data"] for e in events] == [f"e{i}" for i in range(5)]
        assert wait_value(gateway, "evgate_records_out_total", 5, api=api,
                          entrypoint="sse") == 5
    finally:
        client.close()
    assert wait_value(gateway, "evgate_open_connections", 0, api=api, entrypoint="sse") == 0
    # the stream is counted as a request once it ended; the worker that served it writes its
    # count to the shared files within metrics.FLUSH_INTERVAL_S (the scrape may be answered
    # by the other worker)
    assert wait_value(gateway, "evgate_requests_total", 1, api=api, entrypoint="sse",
                      status="200") == 1
