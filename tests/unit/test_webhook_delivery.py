"""The webhook delivery loop over the `mock` endpoint's group stream (evgate/core/spi.py
`open_group_stream`): the at-least-once rules without Kafka. A position is committed only
after a 2xx or a DLQ publish; a failed subscription or a stopped loop commits nothing, and
the next loop of the group gets the record again. The receiver is a real HTTP server."""
from __future__ import annotations

import time

import gevent
import pytest

from evgate.config import Config
from evgate.entrypoints.webhook.delivery import DeliveryLoop
from evgate.entrypoints.webhook.dispatcher import webhook_entrypoint
from evgate.entrypoints.webhook.retry import Backoff
from evgate.entrypoints.webhook.ssrf import SsrfPolicy, parse_networks
from evgate.gateway.deployment import DeployedApi
from evgate.gateway.runtime import GatewayRuntime
from tests.support.receiver import Receiver

SUB = "sub-1"
POLICY = SsrfPolicy(allowed_networks=parse_networks(["127.0.0.1/32"]))
BACKOFF = Backoff(base_s=0.01, max_s=0.05)


def definition(count: int, dlq: bool) -> dict:
    entrypoint = {"type": "webhook", "qos": "at-least-once"}
    groups = [{"name": "default", "type": "mock", "endpoints": [{
        "name": "default", "type": "mock",
        "configuration": {"messageCount": count, "messageInterval": 0,
                          "messageContent": "hello", "headers": {"h": "v"}}}]}]
    if dlq:
        entrypoint["dlq"] = {"endpoint": "dlq"}
        groups.append({"name": "dlq", "type": "mock", "endpoints": [
            {"name": "dlq-endpoint", "type": "mock", "configuration": {}}]})
    return {"id": "api-1", "name": "wh", "type": "async",
            "listeners": [{"type": "subscription", "entrypoints": [entrypoint]}],
            "endpointGroups": groups}


@pytest.fixture
def deploy():
    runtime = GatewayRuntime(Config({}))
    apis = []

    def build(count: int = 1, dlq: bool = False) -> DeployedApi:
        api = DeployedApi(definition(count, dlq), [], runtime)
        api.start()
        apis.append(api)
        return api

    yield build
    for api in apis:
        api.stop()


def start_loop(api: DeployedApi, rx: Receiver) -> DeliveryLoop:
    loop = DeliveryLoop(api.runtime, api, webhook_entrypoint(api),
                        {"id": SUB, "configuration": {"callbackUrl": rx.url}}, POLICY, BACKOFF,
                        max_pending=10)
    loop.start()
    return loop


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        gevent.sleep(0.01)


class _Watched(dict):
    """The mock endpoint's committed positions, calling `on_set(position)` at each commit."""

    def __init__(self, on_set):
        super().__init__()
        self.on_set = on_set

    def __setitem__(self, key, value):
        self.on_set(value)
        super().__setitem__(key, value)


def test_retry_then_success_commits_once_and_nothing_before(deploy):
    api = deploy(count=2)
    with Receiver() as rx:
        rx.script(500, 503)
        # what the receiver had answered when each commit happened (observed at the commit,
        # not by polling: the retries' backoff is jittered and may be ~0)
        at_commit = []
        api.endpoint.committed = _Watched(
            lambda position: at_commit.append((position, [r.status for r in rx.requests])))
        loop = start_loop(api, rx)
        try:
            wait_until(lambda: len(rx.ok()) == 2)
            wait_until(lambda: api.endpoint.commits[SUB] == 2)
        finally:
            loop.stop()
    assert api.endpoint.committed[SUB] == 2 and api.endpoint.commits[SUB] == 2
    # failed attempts commit nothing: the first commit came after the 200
    assert at_commit[0][0] == 1 and at_commit[0][1][:3] == [500, 503, 200], at_commit
    statuses = [(r.header("x-evgate-offset"), r.header("x-evgate-attempt"), r.status)
                for r in rx.requests]
    assert statuses == [("0", "1", 500), ("0", "2", 503), ("0", "3", 200), ("1", "1", 200)]
    first_ids = {r.header("webhook-id") for r in rx.requests[:3]}
    assert len(first_ids) == 1 and rx.requests[3].header("webhook-id") not in first_ids
    assert rx.requests[0].body == b"hello" and rx.requests[0].header("h") == "v"
    assert loop.stats == {"delivered": 2, "filtered": 0, "retried": 2, "dlq": 0}


def test_4xx_goes_to_the_dlq_then_commits(deploy, monkeypatch):
    api = deploy(count=2, dlq=True)
    dlq = api.endpoint_named("dlq")
    published = []
    publish = dlq.publish
    monkeypatch.setattr(dlq, "publish", lambda messages, ctx: (published.extend(messages),
                                                               publish(messages, ctx))[1])
    with Receiver() as rx:
        rx.script(400)
        loop = start_loop(api, rx)
        try:
            wait_until(lambda: api.endpoint.commits[SUB] == 2)
        finally:
            loop.stop()
    assert [r.status for r in rx.requests] == [400, 200]   # a 4xx is not retried
    assert api.endpoint.committed[SUB] == 2
    assert len(published) == 1
    dead = published[0]
    assert dead.content == b"hello" and not dead.tombstone
    assert dead.headers["h"] == [b"v"]                      # the record as stored: bytes
    assert dead.headers["x-evgate-dlq-status"] == [b"400"]
    assert dead.headers["x-evgate-dlq-source"] == [b"mock@0#0"]
    assert dead.headers["x-evgate-dlq-subscription"] == [SUB.encode()]
    assert loop.stats["dlq"] == 1 and loop.stats["delivered"] == 1 and loop.failed is None


def test_4xx_without_dlq_fails_the_subscription_and_commits_nothing(deploy):
    api = deploy(count=2)
    with Receiver() as rx:
        rx.script(400)
        loop = start_loop(api, rx)
        try:
            wait_until(lambda: loop.stopped)
            gevent.sleep(0.1)
        finally:
            loop.stop()
    assert loop.failed == 'callback answered 400: {"error":"scripted"}'
    assert [r.status for r in rx.requests] == [400]           # the next record is not sent
    assert api.endpoint.committed.get(SUB, 0) == 0 and api.endpoint.commits[SUB] == 0


def test_a_stopped_loop_commits_nothing_and_the_group_gets_the_record_again(deploy):
    api = deploy(count=1)
    with Receiver() as rx:
        rx.default = 503
        loop = start_loop(api, rx)
        try:
            wait_until(lambda: len(rx.requests) >= 2)
        finally:
            loop.stop()
        assert api.endpoint.committed.get(SUB, 0) == 0
        rx.default = 200
        again = start_loop(api, rx)
        try:
            wait_until(lambda: api.endpoint.commits[SUB] == 1)
        finally:
            again.stop()
    delivered = rx.ok()
    assert len(delivered) == 1 and delivered[0].header("x-evgate-offset") == "0"
    assert delivered[0].header("webhook-id") == rx.requests[0].header("webhook-id")
    assert api.endpoint.committed[SUB] == 1
