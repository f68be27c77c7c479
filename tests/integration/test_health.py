"""Readiness on the node port follows a real (private) broker: 503 with the failing check
while it is down, 200 again once it is back; liveness stays 200 throughout."""
from __future__ import annotations

import json
import time

import pytest

from tests.support.kafka_broker import create_topic, private_broker
from tests.support.streams import kafka_endpoint, stream_api

pytestmark = pytest.mark.integration


def readiness(gateway) -> tuple[int, dict]:
    status, _headers, body = gateway.node_request("/_node/health/readiness")
    return status, json.loads(body)


def wait_status(gateway, expected: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, report = readiness(gateway)
        if status == expected or time.monotonic() > deadline:
            assert status == expected, report
            return report
        time.sleep(0.3)


def test_readiness_flips_with_the_broker(gateway_factory, unique_topic):
    with private_broker() as (bootstrap, broker):
        create_topic(bootstrap, unique_topic)
        gw = gateway_factory([stream_api("/h", [{"type": "http-post"}],
                                         kafka_endpoint(unique_topic))],
                             workers=1, bootstrap=bootstrap,
                             env={"EVGATE_HEALTH_CACHE_MS": "0",
                                  "EVGATE_HEALTH_CHECK_TIMEOUT_MS": "1000"})
        report = wait_status(gw, 200, 20)
        assert report["status"] == "UP"
        assert report["checks"]["kafka"]["healthy"] is True
        assert report["checks"]["repository"]["healthy"] is True
        status, _h, body = gw.node_request("/_node/health")   # Gravitee's path: same report
        assert status == 200 and json.loads(body)["status"] == "UP"

        broker.stop()
        report = wait_status(gw, 503, 30)
        assert report["status"] == "DOWN"
        assert report["checks"]["kafka"]["healthy"] is False
        assert bootstrap in report["checks"]["kafka"]["message"]
        assert report["checks"]["repository"]["healthy"] is True
        assert gw.node_request("/_node/health/liveness")[0] == 200

        broker.start()
        report = wait_status(gw, 200, 60)
        assert report["checks"]["kafka"]["healthy"] is True


def test_readiness_flips_with_the_repository(gateway_factory):
    """A private PostgreSQL (the session's shared one must stay up), halted and resumed."""
    from tests.support.postgres import PostgresServer, PostgresUnavailable
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        from evgate.security.sealing import generate_key
        gw = gateway_factory((), db=server.create_database(), workers=1,
                             env={"EVGATE_HEALTH_CACHE_MS": "0",
                                  "EVGATE_SECRETS_KEY": generate_key()})
        report = wait_status(gw, 200, 20)
        assert report["checks"]["repository"]["healthy"] is True

        server.halt()
        report = wait_status(gw, 503, 30)
        assert report["status"] == "DOWN"
        assert report["checks"]["repository"] == {
            "healthy": False, "message": "the repository does not answer"}
        assert report["checks"]["kafka"]["healthy"] is True
        assert gw.node_request("/_node/health/liveness")[0] == 200

        server.resume()
        report = wait_status(gw, 200, 30)
        assert report["checks"]["repository"]["healthy"] is True
    finally:
        server.stop()
