"""Gravitee's APIM 4.0 Postman collection (management API v2), run by newman against a real
evgate stack, next to the 3.20 one (tests/integration/test_postman.py, whose helpers it uses).

Folders run: 01 Kafka, 02 Kafka and Kafka Advanced - PLAINTEXT, 03, the four 04 webhook
folders, 05 and 07 "Event-Native - SSE + Kafka". The collection is used verbatim except for
host rewrites: the Kafka addresses (`kafka:9092`, `localhost:9092`, `kafka:9094`) -> the test
broker, the topic `demo` -> a unique one per run, and each webhook.site URL -> its own path on
a local receiver, `/<folder>/<id>` (the collection reuses ids across folders; this way each
subscription's deliveries can be told apart). The webhook SSRF policy
admits those loopback receivers with EVGATE_WEBHOOK_ALLOW_PRIVATE=loopback, as `make run` sets.

The "Kafka Advanced" SASL_PLAINTEXT, SASL_SSL and SSL folders run in a second test against a
private broker with those listeners (tests/support/kafka_security.py) that knows the
collection's PLAIN user; `kafka:9095` / `kafka:9096` / `kafka:9094` -> its listeners and the
collection's JKS store paths -> stores keytool makes from the test PKI with the collection's
password.

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
                                            _requests, _run_newman, receiver, running_stack,
                                            _Receiver)  # noqa: F401
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
    with running_stack(database_url, kafka_bootstrap, tmp_path, environment,
                       env) as (management, gateway, env_json):

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


ADVANCED = {  # folder -> the listener of the secure broker its kafka:909x stands for
    "Kafka Advanced - SASL_PLAINTEXT": ("kafka:9095", "sasl_plaintext",
                                        "/demo/sse/kafka_sasl_plaintext"),
    "Kafka Advanced - SASL_SSL": ("kafka:9096", "sasl_ssl", "/demo/sse/kafka_sasl_ssl"),
    "Kafka Advanced - SSL": ("kafka:9094", "ssl", "/demo/sse/kafka_ssl"),
}
STORE_DIR = "/opt/graviteeio-gateway/config/ssl/"


def _collection_credentials(source: dict) -> tuple[str, str, str]:
    """(PLAIN user, its password, the JKS store password) the collection's bodies use."""
    raw = "".join((r["request"].get("body") or {}).get("raw") or ""
                  for r in _requests(source))
    user, password = re.search(r'username=\\"([^\\]+)\\" password=\\"([^\\]+)\\"',
                               raw).groups()
    store_password = re.search(r'client\.truststore\.jks",\s*"password":\s*"([^"]+)"',
                               raw).group(1)
    return user, password, store_password


def _jks_stores(pki, directory, password: str) -> dict[str, str]:
    import shutil
    import subprocess
    from tests.support.kafka_security import CLIENT_P12_PASSWORD
    keytool = shutil.which("keytool")
    if keytool is None:
        pytest.skip("keytool (a JDK) is not installed: no JKS stores to test with")
    trust, keys = directory / "client.truststore.jks", directory / "client.keystore.jks"
    for args in (["-importcert", "-noprompt", "-alias", "ca", "-file", str(pki.ca_pem),
                  "-keystore", str(trust), "-storetype", "JKS", "-storepass", password],
                 ["-importkeystore", "-noprompt", "-srckeystore", str(pki.client_p12),
                  "-srcstoretype", "PKCS12", "-srcstorepass", CLIENT_P12_PASSWORD,
                  "-destkeystore", str(keys), "-deststoretype", "JKS",
                  "-deststorepass", password, "-destkeypass", password]):
        subprocess.run([keytool, *args], check=True, capture_output=True, timeout=120)
    return {STORE_DIR + "client.truststore.jks": str(trust),
            STORE_DIR + "client.keystore.jks": str(keys)}


def _assert_sse_reads_from(gateway: GatewayProcess, path: str, bootstrap: str,
                           topic: str) -> None:
    """A record produced on the secured broker (through its PLAINTEXT listener) after the
    client connected reaches the SSE client through the API's secured connection."""
    import uuid

    import requests
    from confluent_kafka import Producer
    marker = uuid.uuid4().hex
    deadline = time.monotonic() + 40
    with requests.get(gateway.url + path, headers={"Accept": "text/event-stream"},
                      stream=True, timeout=(5, 10)) as response:
        assert response.status_code == 200, response.text[:500]
        produced = False
        for line in response.iter_lines(decode_unicode=True):
            if not produced:
                time.sleep(1.0)
                producer = Producer({"bootstrap.servers": bootstrap})
                producer.produce(topic, json.dumps({"marker": marker}).encode())
                assert producer.flush(10) == 0
                produced = True
            if line and line.startswith("data:") and marker in line:
                return
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"the SSE stream {path} did not carry the record\n{gateway.log()}")


def test_postman_4_kafka_advanced_folders(kafka_bootstrap, database_url, tmp_path):
    from tests.support.kafka_security import secure_broker
    source = _reference(COLLECTION)
    user, password, store_password = _collection_credentials(source)
    top = _find(source["item"], "02 - Event Consumption - SSE")
    topic = f"adv-{int(time.time() * 1000)}"
    with secure_broker(tmp_path / "broker", plain_users={user: password}) as broker:
        create_topic(broker.plaintext, topic)
        stores = _jks_stores(broker.pki, tmp_path, store_password)
        scoped = []
        for name, (address, listener, _path) in ADVANCED.items():
            folder = _rewrite(_find(top["item"], name), getattr(broker, listener), topic, "")
            for request in _requests(folder):
                body = request["request"].get("body") or {}
                if body.get("raw"):
                    text = body["raw"].replace(address, getattr(broker, listener))
                    for original, local in stores.items():
                        text = text.replace(original, local)
                    body["raw"] = text
            folder["name"] = f"02 / {name}"
            scoped.append(folder)
        environment = _reference(ENVIRONMENT)
        env = {"EVGATE_ADMIN_PASSWORD": "admin", "EVGATE_SYNC_INTERVAL_MS": "500"}
        with running_stack(database_url, kafka_bootstrap, tmp_path, environment, env,
                           gateway_workers=1) as (management, gateway, advanced_environment):
            results = _run_newman({**source, "item": scoped}, advanced_environment, tmp_path,
                                  "advanced")
            assert len(results) == sum(1 for f in scoped for _ in _requests(f)), results
            failures = [r for r in results if not (r["code"] and 200 <= r["code"] < 300)]
            assert not failures, f"non-2xx answers:\n{json.dumps(failures, indent=1)}"
            time.sleep(1.5)  # the gateway's sync picks the started APIs up
            for _address, _listener, path in ADVANCED.values():
                _assert_sse_reads_from(gateway, path, broker.plaintext, topic)
