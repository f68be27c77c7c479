"""Publish-phase policies through a real gunicorn gateway and a real Kafka broker.

One gateway (2 workers) serves three http-post APIs: message filtering, record key and
header set by assign-attributes / transform-headers, and a rate limit.
"""
from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner

from evgate.cli import main
from tests.support.kafka_broker import consume_all, create_topic

pytestmark = pytest.mark.integration


def post_api(path: str, topic: str, *, publish=(), request=()) -> dict:
    return {
        "id": str(uuid.uuid4()), "name": f"policies {path}", "definitionVersion": "4.0.0",
        "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}],
                       "entrypoints": [{"type": "http-post"}]}],
        "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [
            {"name": "default", "type": "kafka",
             "configuration": {"topics": [topic], "producer": {"enabled": True},
                               "consumer": {"enabled": False}}}]}],
        "flows": [{"name": "policies", "selectors": [{"type": "channel", "channel": "/"}],
                   "publish": list(publish), "request": list(request)}],
        "plans": [{"name": "Keyless", "security": {"type": "key-less"},
                   "status": "published"}],
    }


@pytest.fixture(scope="module")
def topics(kafka_bootstrap):
    names = {name: f"test-policies-{name}-{uuid.uuid4().hex[:8]}"
             for name in ("filtered", "keyed", "limited")}
    for name in names.values():
        create_topic(kafka_bootstrap, name)
    return names


@pytest.fixture
def gateway(gateway_factory, topics):
    return gateway_factory([
        post_api("/filtered", topics["filtered"], publish=[{
            "policy": "message-filtering",
            "configuration": {"filter": "{#jsonPath(#message.content, '$.keep') == true}"}}]),
        post_api("/keyed", topics["keyed"], publish=[
            {"policy": "assign-attributes", "configuration": {"attributes": [
                {"name": "gravitee.attribute.kafka.recordKey",
                 "value": "{#request.headers['X-Order'][0]}"}]}},
            {"policy": "transform-headers", "configuration": {"addHeaders": [
                {"name": "x-source", "value": "gw-{#request.headers['X-Src'][0]}"}]}}]),
        post_api("/limited", topics["limited"], request=[{
            "policy": "rate-limit",
            "configuration": {"rate": {"limit": 2, "periodTime": 1, "periodTimeUnit": "HOURS"},
                              "addHeaders": True}}]),
    ])


def test_publish_policies_against_kafka(gateway, kafka_bootstrap, topics):
    # message-filtering on publish: filtered records are answered 202 and never produced
    bodies = [{"keep": True, "n": 1}, {"keep": False, "n": 2}, "not json", {"keep": True, "n": 4}]
    for body in bodies:
        raw = body if isinstance(body, str) else json.dumps(body)
        status, _, _ = gateway.request("POST", "/filtered", raw)
        assert status == 202
    records = consume_all(kafka_bootstrap, topics["filtered"], 3, timeout=10)
    assert [json.loads(r.value())["n"] for r in records] == [1, 4]

    # assign-attributes sets the record key, transform-headers adds a record header
    status, _, _ = gateway.request("POST", "/keyed", b"payload",
                                   {"X-Order": "order-42", "X-Src": "test"})
    assert status == 202
    [record] = consume_all(kafka_bootstrap, topics["keyed"], 1)
    assert record.key() == b"order-42"
    assert dict(record.headers())["x-source"] == b"gw-test"


def test_rate_limit_counts_across_the_workers_of_the_node(gateway):
    # 2 per hour, 2 workers sharing the node's windows: exactly 2 of 40 requests pass,
    # whichever worker each connection lands on (per-worker counters let up to 4 through).
    # Sent 20 at a time, so that both workers accept some (one after the other, the same
    # worker tends to accept them all).
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: gateway.request("POST", "/limited", b"x"),
                                range(40)))
    statuses = [status for status, _, _ in answers]
    assert sorted(statuses) == [202] * 2 + [429] * 38
    ok_headers = next(headers for status, headers, _ in answers if status == 202)
    assert ok_headers["X-Rate-Limit-Limit"] == "2"
    for status, headers, body in answers:
        if status == 429:
            payload = json.loads(body)
            assert payload["http_status_code"] == 429
            assert payload["key"] == "RATE_LIMIT_TOO_MANY_REQUESTS"
            assert int(headers["Retry-After"]) > 0
            assert headers["X-Rate-Limit-Remaining"] == "0"


def test_broken_filter_is_rejected_at_import(tmp_path, database_url, monkeypatch):
    source = "{#jsonPath(#message.content, '$.a') == )}"
    definition = post_api("/broken", "unused", publish=[{
        "policy": "message-filtering", "configuration": {"filter": source}}])
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(definition))
    monkeypatch.setenv("EVGATE_DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["apis", "import", str(path)])
    assert result.exit_code != 0
    output = result.output + (result.stderr or "")
    assert "$.flows[0].publish[0].configuration.filter" in output
    assert f"unexpected token ')' at position {source.rindex(')')}" in output
