"""Bad input against real gunicorn workers and a real broker: a batch nested 100,000 deep
and management bodies nested 10,000 deep are 400s, a chunked management body over the limit
is 413, and the workers keep serving (no RecursionError, no 500, no traceback)."""
from __future__ import annotations

import base64
import http.client
import json

import pytest

from tests.integration.test_ingestion import ingestion_api
from tests.support.gateway import GatewayProcess
from tests.support.kafka_broker import consume_all, create_topic

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Basic " + base64.b64encode(b"admin:bad-input-admin").decode()}
M = "/management/organizations/DEFAULT/environments/DEFAULT"


def test_batch_nested_100000_deep_is_400_and_the_worker_keeps_serving(
        gateway_factory, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    gateway = gateway_factory([ingestion_api("/deep/batch", unique_topic, batch=True)],
                              workers=1)
    deep = b"[" * 100000 + b"]" * 100000
    for content_type, body in (("application/json", deep),
                               ("application/x-ndjson", b'{"n": 0}\n' + deep)):
        status, _, answer = gateway.request("POST", "/deep/batch", body,
                                            {"Content-Type": content_type})
        assert status == 400, (status, answer[:300])
        error = json.loads(answer)
        assert error["key"] == "BATCH_INVALID"
        assert "deeper than 128 levels" in error["message"]
    status, _, answer = gateway.request("POST", "/deep/batch", b'[{"n": 1}, [[[2]]]]',
                                        {"Content-Type": "application/json"})
    assert status == 202, answer
    records = consume_all(kafka_bootstrap, unique_topic, 2)
    assert [r.value() for r in records] == [b'{"n": 1}', b"[[[2]]]"]  # nothing of the refused
    assert "Traceback" not in gateway.log() and "RecursionError" not in gateway.log()


def _chunked_post(url: str, path: str, chunks, headers: dict[str, str]):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", path, body=iter(chunks), headers=headers, encode_chunked=True)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_management_deep_and_oversized_bodies_are_4xx(kafka_bootstrap, database_url, tmp_path):
    management = GatewayProcess(database_url=database_url, kafka_bootstrap=kafka_bootstrap,
                                workers=1, app="wsgi:management",
                                env={"EVGATE_ADMIN_PASSWORD": "bad-input-admin"},
                                log_path=tmp_path / "management.log")
    with management:
        headers = {**ADMIN, "Content-Type": "application/json"}
        status, _, body = management.request("POST", M + "/v4/apis",
                                             "[" * 10000 + "]" * 10000, headers)
        assert status == 400 and json.loads(body)["technicalCode"] == "body.tooDeep"
        # chunked: no Content-Length, the read itself stops at 1 MiB
        chunks = [b'{"name": "'] + [b"x" * 65536] * 20 + [b'"}']
        status, body = _chunked_post(management.url, M + "/applications", chunks, headers)
        assert status == 413 and json.loads(body)["technicalCode"] == "body.tooLarge"
        status, body = _chunked_post(management.url, M + "/applications",
                                     [b'{"name": ', b'"chunked"}'], headers)
        assert status == 201 and json.loads(body)["name"] == "chunked"
        assert "Traceback" not in management.log()
