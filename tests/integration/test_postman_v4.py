"""Gravitee's APIM 4.0 Postman collection (management API v2), run by newman against a real
evgate stack, next to the 3.20 one (tests/integration/test_postman.py, whose helpers it uses).

Folders run: 01 Kafka, 02 Kafka and Kafka Advanced - PLAINTEXT, 03, the four 04 webhook
folders, 05 and 07 "Event-Native - SSE + Kafka". The collection is used verbatim except for
host rewrites: the Kafka addresses (`kafka:9092`, `localhost:9092`, `kafka:9094`) -> the test
broker, the topic `demo` -> a unique one per run, and each webhook.site URL -> its own path on
a local receiver, `/<folder>/<id>` (the collection reuses ids across folders; this way each
subscription's deliveries can be told apart). The webhook SSRF policy
admits those loopback receivers with EVGATE_WEBHOOK_ALLOW_PRIVATE=loopback, as `make run` sets.

Every request must answer 2xx. Then the APIs work: the collection's own POST is 202, SSE,
WebSocket and http-get clients read the record, the plain and CloudEvents webhooks receive it,
and each filtered webhook subscription receives only the records its metadata selects.
"""
from __future__ import annotations

import copy
import json
import re
import time

import pytest

from tests.integration.test_postman import (POST_REQUESTS, _assert_sse_streams,
                                            _assert_websocket_streams, _find, _reference,
                                            _requests, _run_newman, receiver, _Receiver)  # noqa: F401
from tests.support.gateway import GatewayProcess
from tests.support.kafka_broker import create_topic

pytestmark = pytest.mark.integration

COLLECTION = "gravitee-4.0-v4.postman_collection.json"
ENVIRONMENT = "gravitee-4.0-v4.postman_environment.json"
IN_SCOPE = [
    ("01 - Data Ingestion (HTTP Post)", "Kafka"),
    ("02 - Event Consumption - SSE", "Kafka"),
    ("02 - Event Consumption - SSE", "Kafka Advanced - PLAINTEXT"),
    ("03 - Event Consumption - Websocket", None),
    ("04 - Event Consumption - Webhook", "Webhook"),
    ("04 - Event Consumption - Webhook", "Webhook - Cloud-Events"),
    ("04 - Event Consumption - Webhook", "Webhook - Subscription approval workflow"),
    ("04 - Event Consumption - Webhook", "Webhook - Message Filtering"),
    ("05 - Event Consumption - HTTP-GET", None),
    ("07 - Analytics", "Event-Native - SSE + Kafka"),
]
_HOOK = re.compile(r"https://webhook\.site/([0-9a-f-]+)")
_BROKERS = ("kafka:9092", "localhost:9092", "kafka:9094")


def _rewrite(collection: dict, bootstrap: str, topic: str, receiver_url: str) -> dict:
    collection = copy.deepcopy(collection)
    for request in _requests(collection):
        body = request["request"].get("body") or {}
        text = body.get("raw")
        if not text:
            continue
        for broker in _BROKERS:
            text = text.replace(broker, bootstrap)
        text = re.sub(r'"topics"\s*:\s*\[\s*"demo"\s*\]', f'"topics": ["{topic}"]', text)
        body["raw"] = _HOOK.sub(lambda m: f"{receiver_url}/{m.group(1)}", text)
    return collection


def _hook_ids(folder: dict) -> list[str]:
    """The webhook.site ids of a folder's subscribe requests, in order."""
    ids = []
    for request in _requests(folder):
        ids += _HOOK.findall((request["request"].get("body") or {}).get("raw") or "")
    return list(dict.fromkeys(ids))


def _received(hook_id: str) -> list[bytes]:
    return [body for path, body in _Receiver.received if path.endswith("/" + hook_id)]


def _assert_sse_receives_new_record(gateway: GatewayProcess, path: str) -> None:
    """These SSE APIs read from the latest offset: a record produced once connected arrives."""
    import uuid

    import requests
    marker = uuid.uuid4().hex
    deadline = time.monotonic() + 30
    with requests.get(gateway.url + path, headers={"Accept": "text/event-stream"},
                      stream=True, timeout=(5, 10)) as response:
        assert response.status_code == 200, response.text[:500]
        lines = response.iter_lines(decode_unicode=True)
        produced = False
        for line in lines:
            if not produced:  # the stream is open (its first line came): produce now
                time.sleep(1.0)  # let the consumer get its partitions
                status = gateway.request("POST", "/data/ingestion/kafka",
                                         json.dumps({"marker": marker}).encode(),
                                         {"Content-Type": "application/json"})[0]
                assert status == 202
                produced = True
            if line and line.startswith("data:") and marker in line:
                return
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"the SSE stream {path} did not carry a record produced meanwhile")


def test_postman_4_collection(kafka_bootstrap, database_url, unique_topic, tmp_path, receiver):
    create_topic(kafka_bootstrap, unique_topic)
    source = _reference(COLLECTION)
    scoped, post_requests, hooks = [], [], {}
    for top, sub in IN_SCOPE:
        folder = copy.deepcopy(_find(source["item"], top))
        if sub is not None:
            folder = _find(folder["item"], sub)
        for child in list(folder.get("item", [])):
            if child["name"] == POST_REQUESTS:
                folder["item"].remove(child)
                post_requests.extend(_requests(child))
        index = len(scoped)
        hooks[sub or top] = [f"{index}/{hook}" for hook in _hook_ids(folder)]
        folder = _rewrite(folder, kafka_bootstrap, unique_topic, f"{receiver}/{index}")
        folder["name"] = f"{top} / {sub}" if sub else top
        scoped.append(folder)

    collection = {**source, "item": scoped}
    environment = _reference(ENVIRONMENT)
    env = {"EVGATE_ADMIN_PASSWORD": "admin", "EVGATE_WEBHOOK_ALLOW_PRIVATE": "loopback",
           "EVGATE_SYNC_INTERVAL_MS": "500"}
    management = GatewayProcess(database_url=database_url, kafka_bootstrap=kafka_bootstrap,
                                workers=1, app="wsgi:management", env=env,
                                log_path=tmp_path / "management.log")
    gateway = GatewayProcess(database_url=database_url, kafka_bootstrap=kafka_bootstrap,
                             workers=2, env=env, log_path=tmp_path / "gateway.log")
    try:
        management.start()
        gateway.start()
        hosts = {"management_host": management.url, "gateway_host": gateway.url,
                 "portal_api_host": management.url}
        values = [v for v in environment["values"] if v["key"] not in hosts]
        values += [{"key": k, "value": v, "enabled": True} for k, v in hosts.items()]
        env_json = {**environment, "values": values}

        results = _run_newman(collection, env_json, tmp_path, "management")
        assert len(results) == sum(1 for folder in scoped for _ in _requests(folder)), results
        failures = [r for r in results if not (r["code"] and 200 <= r["code"] < 300)]
        assert not failures, f"non-2xx answers:\n{json.dumps(failures, indent=1)}\n" \
                             f"{management.log()}"

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and \
                gateway.request("POST", "/data/ingestion/kafka", b'{"feature": "warmup"}',
                                {"Content-Type": "application/json"})[0] != 202:
            time.sleep(0.2)
        posts = _rewrite({**source, "item": post_requests}, kafka_bootstrap, unique_topic,
                         receiver)
        results = _run_newman(posts, env_json, tmp_path, "gateway")
        assert [r["code"] for r in results] == [202] * len(post_requests), results
        # records for the filtered subscriptions (metadata feature demo / demo2)
        for feature in ("demo", "demo2"):
            status = gateway.request("POST", "/data/ingestion/kafka",
                                     json.dumps({"feature": feature}).encode(),
                                     {"Content-Type": "application/json"})[0]
            assert status == 202

        plain, cloud = hooks["Webhook"][0], hooks["Webhook - Cloud-Events"][0]
        approval = hooks["Webhook - Subscription approval workflow"][0]
        first, second = hooks["Webhook - Message Filtering"]
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            done = (any(b"cloud2" in b for b in _received(plain))
                    and any(b"specversion" in b and b"cloud2" in b for b in _received(cloud))
                    and any(b"cloud2" in b for b in _received(approval))
                    and any(b'"demo"' in b for b in _received(first))
                    and any(b'"demo2"' in b for b in _received(second)))
            if done:
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"webhook deliveries missing: {_Receiver.received!r}\n"
                                 f"{gateway.log()}")
        # the filter lets through only what each subscription's metadata selects
        assert all(b'"demo"' in b for b in _received(first)), _received(first)
        assert all(b'"demo2"' in b for b in _received(second)), _received(second)

        _assert_sse_streams(gateway.url + "/demo/analytics/sse/kafka")  # from earliest
        for path in ("/demo/sse/kafka", "/demo/sse/kafka_plaintext"):  # from latest
            _assert_sse_receives_new_record(gateway, path)
        _assert_websocket_streams(gateway.url.replace("http", "ws") + "/demo/ws")
        status, _headers, body = gateway.request("GET", "/demo/http-get")
        assert status == 200 and b"cloud2" in body, body[:500]
    finally:
        gateway.stop()
        management.stop()
