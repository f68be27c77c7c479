"""/_node/metrics on the node port of a real 2-worker gateway: values move with traffic and the
multiprocess sum is the same whichever worker answers the scrape; node paths are not served
on the public port; no per-client label."""
from __future__ import annotations

import re
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


def test_requests_and_records_in_are_summed_across_workers_node_port_only(gateway):
    api = gateway.api_id
    # One connection per request, in concurrent rounds, until both workers have served some
    # (the kernel decides which worker accepts: sequential requests may all land on one).
    from concurrent.futures import ThreadPoolExecutor
    sent, pids = 0, set()
    with ThreadPoolExecutor(8) as pool:
        while len(pids) < 2 and sent < 400:
            statuses = list(pool.map(
                lambda i: gateway.request("POST", "/metered", f"m{i}".encode())[0],
                range(sent, sent + 24)))
            assert statuses == [202] * 24
            sent += 24
            pids = set(re.findall(r"\[(\d+)\] evgate\.access: .*\"POST /metered\" 202",
                                  gateway.log()))
    assert gateway.request("GET", "/no-such-api")[0] == 404
    assert len(pids) == 2, f"both workers should have served requests ({sent} sent)"

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
    samples = scrape(gateway)
    # the stream is counted as a request once it ended
    assert value(samples, "evgate_requests_total", api=api, entrypoint="sse",
                 status="200") == 1
