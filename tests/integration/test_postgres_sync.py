"""Many nodes on one PostgreSQL: a deploy through the management API (a real gunicorn) reaches
two gateway instances (two gunicorn masters) through their repository sync."""
from __future__ import annotations

import base64
import time

import pytest

from tests.support.gateway import GatewayProcess
from tests.support.kafka_broker import consume_all, create_topic
from tests.support.postgres import postgres_server  # noqa: F401

pytestmark = pytest.mark.integration

B = "/management/organizations/DEFAULT/environments/DEFAULT"
AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:pg-admin").decode()}


def _definition(path: str, topic: str) -> dict:
    return {"name": "pg", "definitionVersion": "4.0.0", "type": "async",
            "listeners": [{"type": "http", "paths": [{"path": path}],
                           "entrypoints": [{"type": "http-post"}]}],
            "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [
                {"name": "default", "type": "kafka", "configuration": {"topics": [topic]}}]}]}


def test_deploy_reaches_two_gateways_on_one_postgres(postgres_server, kafka_bootstrap,  # noqa: F811
                                                     unique_topic, tmp_path):
    create_topic(kafka_bootstrap, unique_topic)
    url = postgres_server.create_database()
    env = {"EVGATE_ADMIN_PASSWORD": "pg-admin", "EVGATE_SYNC_INTERVAL_MS": "500"}
    processes = [
        GatewayProcess(database_url=url, kafka_bootstrap=kafka_bootstrap, workers=1,
                       app="wsgi:management", env=env, log_path=tmp_path / "mgmt.log"),
        GatewayProcess(database_url=url, kafka_bootstrap=kafka_bootstrap, workers=1, env=env,
                       log_path=tmp_path / "gw1.log"),
        GatewayProcess(database_url=url, kafka_bootstrap=kafka_bootstrap, workers=2, env=env,
                       log_path=tmp_path / "gw2.log"),
    ]
    try:
        for process in processes:
            process.start()
        management, gateways = processes[0], processes[1:]
        status, api = management.json("POST", B + "/v4/apis/",
                                      _definition("/pg/ingest", unique_topic), headers=AUTH)
        assert status == 201, api
        status, plan = management.json("POST", f"{B}/v4/apis/{api['id']}/plans",
                                       {"name": "open", "security": {"type": "key-less"}},
                                       headers=AUTH)
        assert status == 201, plan
        assert management.json("POST", f"{B}/v4/apis/{api['id']}/plans/{plan['id']}/_publish",
                               headers=AUTH)[0] == 200
        for gateway in gateways:
            assert gateway.request("POST", "/pg/ingest", b"early")[0] == 404
        assert management.request("POST", f"{B}/v4/apis/{api['id']}?action=START",
                                  headers=AUTH)[0] == 204
        started = time.monotonic()
        pending = set(range(len(gateways)))
        # The promise: every node applies the deploy within 2 s (sync every 500 ms).
        while pending and time.monotonic() - started < 2.0:
            for index in list(pending):
                if gateways[index].request("POST", "/pg/ingest", f"gw{index}".encode())[0] == 202:
                    pending.discard(index)
            time.sleep(0.05)
        assert not pending, f"gateways {sorted(pending)} did not serve the API within 2 s"
        values = {m.value() for m in consume_all(kafka_bootstrap, unique_topic, 2)}
        assert {b"gw0", b"gw1"} <= values

        # Stop is applied everywhere too, without restarting anything.
        assert management.request("POST", f"{B}/v4/apis/{api['id']}?action=stop",
                                  headers=AUTH)[0] == 204
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
                g.request("POST", "/pg/ingest", b"late")[0] != 404 for g in gateways):
            time.sleep(0.1)
        # A 404 shows that the worker which answered has synced; the other worker of a
        # 2-worker gateway syncs on its own timer, up to one interval (500 ms) later.
        time.sleep(1.5)
        statuses = [g.request("POST", "/pg/ingest", b"late")[0]
                    for g in gateways for _ in range(6)]
        assert statuses == [404] * len(statuses), statuses
    finally:
        for process in processes:
            process.stop()
