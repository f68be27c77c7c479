"""Seed use case 1 end to end: POST -> 202 only once the real broker holds the record."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from tests.support.gateway import ROOT, GatewayProcess, free_port, import_apis
from tests.support.kafka_broker import consume_all, create_topic, private_broker

pytestmark = pytest.mark.integration


def ingestion_api(path: str, topic: str, **entrypoint_config) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "name": f"ingestion {path}",
        "definitionVersion": "4.0.0",
        "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}],
                       "entrypoints": [{"type": "http-post",
                                        "configuration": entrypoint_config}]}],
        "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [
            {"name": "default", "type": "kafka",
             "configuration": {"topics": [topic], "producer": {"enabled": True},
                               "consumer": {"enabled": False}}}]}],
        "plans": [{"name": "Keyless", "security": {"type": "key-less"},
                   "status": "published"}],
    }


@pytest.fixture
def topic(kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    return unique_topic


@pytest.fixture
def gateway(gateway_factory, topic):
    return gateway_factory([
        ingestion_api("/data/ingestion", topic, requestHeadersToMessage=True),
        ingestion_api("/data/plain", topic),
        ingestion_api("/data/batch", topic, batch=True),
    ], env={"EVGATE_MAX_MESSAGE_SIZE": "4096"})


def test_post_answers_202_and_the_record_is_in_kafka(gateway, kafka_bootstrap, topic):
    status, headers, body = gateway.request(
        "POST", "/data/ingestion", b"my_payload",
        {"X-Kafka-Key": "order-42", "X-Trace": "abc", "Content-Type": "text/plain"})
    assert (status, body) == (202, b"")
    assert headers["X-Gravitee-Transaction-Id"]
    [record] = consume_all(kafka_bootstrap, topic, 1)
    assert record.value() == b"my_payload"
    assert record.key() == b"order-42"
    record_headers = {k: v.decode() for k, v in record.headers()}
    assert record_headers["X-Trace"] == "abc"
    assert "Host" not in record_headers  # hop-by-hop headers are not copied


def test_headers_stay_out_unless_configured(gateway, kafka_bootstrap, topic):
    assert gateway.request("POST", "/data/plain", b"x", {"X-Trace": "abc"})[0] == 202
    [record] = consume_all(kafka_bootstrap, topic, 1)
    assert record.headers() is None
    assert record.key()  # the message id when no key is given (Gravitee's default)


def test_many_concurrent_posts_all_land(gateway, kafka_bootstrap, topic):
    from concurrent.futures import ThreadPoolExecutor
    payloads = [f"m-{i}".encode() for i in range(200)]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda p: gateway.request("POST", "/data/plain", p)[0],
                                 payloads))
    assert statuses == [202] * len(payloads)
    records = consume_all(kafka_bootstrap, topic, len(payloads))
    assert sorted(r.value() for r in records) == sorted(payloads)


def test_body_over_the_limit_is_413(gateway, kafka_bootstrap, topic):
    status, _, body = gateway.request("POST", "/data/plain", b"x" * 5000)
    assert status == 413
    assert json.loads(body)["http_status_code"] == 413
    assert consume_all(kafka_bootstrap, topic, 1, timeout=2) == []


def test_unknown_path_is_404_with_gravitee_body(gateway):
    status, headers, body = gateway.request("POST", "/nowhere", b"x")
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"message": "No context-path matches the request URI.",
                                "http_status_code": 404}


def test_wrong_method_is_405(gateway):
    status, headers, body = gateway.request("GET", "/data/plain")
    assert status == 405
    assert headers["Allow"] == "POST"
    assert json.loads(body)["http_status_code"] == 405


def test_batch_ndjson_and_array(gateway, kafka_bootstrap, topic):
    lines = b"\n".join(json.dumps({"n": i}).encode() for i in range(5)) + b"\n"
    status, _, body = gateway.request("POST", "/data/batch", lines,
                                      {"Content-Type": "application/x-ndjson"})
    assert status == 202
    result = json.loads(body)
    assert result["accepted"] == 5 and result["failed"] == 0
    assert [r["status"] for r in result["results"]] == ["accepted"] * 5
    status, _, body = gateway.request("POST", "/data/batch", json.dumps([{"n": 5}, {"n": 6}]),
                                      {"Content-Type": "application/json"})
    assert status == 202 and json.loads(body)["accepted"] == 2
    records = consume_all(kafka_bootstrap, topic, 7)
    assert [json.loads(r.value())["n"] for r in records] == list(range(7))
    # A JSON object on a batch entrypoint is one message, not an error.
    assert gateway.request("POST", "/data/batch", b'{"n": 7}',
                           {"Content-Type": "application/json"})[0] == 202


def test_bad_batch_is_400_and_nothing_is_produced(gateway, kafka_bootstrap, topic):
    status, _, body = gateway.request("POST", "/data/batch", b'{"n": 1}\nnot json\n',
                                      {"Content-Type": "application/x-ndjson"})
    assert status == 400
    assert "line 2" in json.loads(body)["message"]
    assert consume_all(kafka_bootstrap, topic, 1, timeout=2) == []


def test_live_sync_deploys_and_undeploys_without_restart(gateway, kafka_bootstrap, topic):
    from evgate.repository import open_repository
    from evgate.services.apis import ApiService
    from evgate.services.principal import LOCAL_OPERATOR
    api = ingestion_api("/data/late", topic)
    import_apis(gateway.database_url, [api])
    deadline = time.monotonic() + 2.5
    while gateway.request("POST", "/data/late", b"late")[0] != 202:
        assert time.monotonic() < deadline, "deploy not picked up within 2 s"
        time.sleep(0.1)
    repo = open_repository(gateway.database_url)
    ApiService(repo, LOCAL_OPERATOR).stop(api["id"])
    deadline = time.monotonic() + 2.5
    while gateway.request("POST", "/data/late", b"late")[0] != 404:
        assert time.monotonic() < deadline, "stop not picked up within 2 s"
        time.sleep(0.1)
    repo.dispose()


def test_broker_down_gives_503_never_202(database_url, tmp_path):
    """Stop a private broker: a POST must answer 503 with Retry-After, not 202."""
    with private_broker() as (bootstrap, broker):
        import_apis(database_url, [ingestion_api("/data/ingestion", "down-test")])
        create_topic(bootstrap, "down-test")
        gateway = GatewayProcess(database_url=database_url, kafka_bootstrap=bootstrap,
                                 workers=1, log_path=tmp_path / "gw.log",
                                 env={"EVGATE_PRODUCE_TIMEOUT_MS": "1500"})
        with gateway:
            # A fresh broker may answer "coordinator load in progress" for a while: wait
            # until the gateway's producer is really through before taking the broker down.
            deadline = time.monotonic() + 60
            while gateway.request("POST", "/data/ingestion", b"before")[0] != 202:
                assert time.monotonic() < deadline, "the fresh broker never acknowledged"
                time.sleep(0.5)
            broker.stop()
            status, headers, body = gateway.request("POST", "/data/ingestion", b"during")
            assert status == 503, body
            assert headers["Retry-After"]
            assert "Kafka" in json.loads(body)["message"]
            broker.start()
            deadline = time.monotonic() + 30
            while gateway.request("POST", "/data/ingestion", b"after")[0] != 202:
                assert time.monotonic() < deadline, "gateway did not recover with the broker"
                time.sleep(0.5)
        values = [r.value() for r in consume_all(bootstrap, "down-test", 100, timeout=10)]
        assert b"before" in values and b"after" in values


def test_plain_gunicorn_k_gevent_works(kafka_bootstrap, topic, database_url, tmp_path):
    """The design's deploy command: `gunicorn -k gevent wsgi:app` (config from the env)."""
    import_apis(database_url, [ingestion_api("/data/ingestion", topic)])
    port = free_port()
    env = {"EVGATE_DATABASE_URL": database_url, "EVGATE_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "PATH": "/usr/bin:/bin"}
    log = open(tmp_path / "plain.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gevent", "-b",
                             f"127.0.0.1:{port}", "--no-control-socket", "wsgi:app"],
                            cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        gateway = GatewayProcess(database_url=database_url, kafka_bootstrap=kafka_bootstrap)
        gateway.port, gateway.url = port, f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                status = gateway.request("POST", "/data/ingestion", b"plain", timeout=10)[0]
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    (tmp_path / "plain.log").read_text()
                time.sleep(0.2)
        assert status == 202
        assert consume_all(kafka_bootstrap, topic, 1)[0].value() == b"plain"
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
