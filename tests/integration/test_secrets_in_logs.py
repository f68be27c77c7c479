"""Secrets never reach the logs, end to end: a real management server and a real gateway at
EVGATE_LOG_LEVEL=debug (plain and JSON), real Kafka, a real webhook receiver.

Every credential the two processes see goes through them: the admin password (right and
wrong ones) in Basic auth, an API key in the header and in `?api-key=`, a JWT (and the
plan's HMAC secret), webhook subscriptions with basic / token auth and a signing secret
that deliver to a local receiver. Then both processes' complete logs are searched for each
secret (and its Base64 form where it travelled encoded).
"""
from __future__ import annotations

import base64
import json
import os
import time
import uuid

import jwt
import pytest

from evgate.security.sealing import generate_key
from tests.support.waiting import wait_for
from tests.support.gateway import GatewayProcess
from tests.support.kafka_broker import create_topic
from tests.support.receiver import Receiver

pytestmark = pytest.mark.integration

M = "/management/organizations/DEFAULT/environments/DEFAULT"
ADMIN_PASSWORD = "adm1n-Pw-" + uuid.uuid4().hex[:10]
WRONG_PASSWORD = "wr0ng-Pw-" + uuid.uuid4().hex[:10]
HMAC_SECRET = "jwt-hmac-" + uuid.uuid4().hex          # the JWT plan's resolverParameter
HOOK_PASSWORD = "hook-pw-" + uuid.uuid4().hex[:10]
HOOK_TOKEN = "hook-tok-" + uuid.uuid4().hex[:10]
SIGNING_SECRET = "whsec_" + uuid.uuid4().hex


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


ADMIN = basic("admin", ADMIN_PASSWORD)


def definition(name: str, topic: str, listener: dict, plan_security: dict) -> dict:
    return {"name": name, "definitionVersion": "4.0.0", "type": "async",
            "listeners": [listener],
            "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [{
                "name": "default", "type": "kafka", "configuration": {
                    "topics": [topic], "consumer": {"autoOffsetReset": "earliest"}}}]}],
            "plans": [{"name": name, "status": "published", "security": plan_security}]}


def http_post(path: str) -> dict:
    return {"type": "http", "paths": [{"path": path}], "entrypoints": [{"type": "http-post"}]}


def wait_until(predicate, what: str, timeout: float = 30.0):
    """Wait for the gateway's sync to apply a change (the interval is 500 ms in tests)."""
    return wait_for(predicate, what, timeout)


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_no_secret_in_either_log(kafka_bootstrap, unique_topic, database_url, tmp_path,
                                 log_format):
    create_topic(kafka_bootstrap, unique_topic)
    secrets_key = generate_key()
    env = {"EVGATE_LOG_LEVEL": "debug", "EVGATE_LOG_FORMAT": log_format,
           "EVGATE_ADMIN_PASSWORD": ADMIN_PASSWORD, "EVGATE_SECRETS_KEY": secrets_key,
           "EVGATE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32"}
    management = GatewayProcess(database_url=database_url, kafka_bootstrap=kafka_bootstrap,
                                workers=1, app="wsgi:management", env=env,
                                log_path=tmp_path / "management.log")
    gateway = GatewayProcess(database_url=database_url, kafka_bootstrap=kafka_bootstrap,
                             workers=1, env=env, log_path=tmp_path / "gateway.log")
    secrets: dict[str, str] = {
        "admin password": ADMIN_PASSWORD, "admin basic": ADMIN["Authorization"].split()[1],
        "wrong password": WRONG_PASSWORD, "jwt hmac secret": HMAC_SECRET,
        "webhook password": HOOK_PASSWORD, "webhook token": HOOK_TOKEN,
        "signing secret": SIGNING_SECRET, "secrets key": secrets_key,
        "webhook basic": base64.b64encode(f"hook:{HOOK_PASSWORD}".encode()).decode()}
    try:
        with Receiver() as rx:
            management.start()
            gateway.start()

            def manage(method: str, path: str, payload=None, headers=ADMIN):
                return management.json(method, M + path, payload, headers=headers)

            # wrong passwords: refused, and the refusal is logged without them
            for user in ("admin", "nobody"):
                status, _ = manage("GET", "/v4/apis", headers=basic(user, WRONG_PASSWORD))
                assert status == 401
            assert manage("GET", "/v4/apis")[0] == 200

            keyed = manage("POST", "/v4/apis/", definition(
                "keyed", unique_topic, http_post("/s/keyed"), {"type": "api-key"}))[1]
            signed = manage("POST", "/v4/apis/", definition(
                "jwt", unique_topic, http_post("/s/jwt"), {"type": "jwt", "configuration": {
                    "signature": "HMAC_HS256", "publicKeyResolver": "GIVEN_KEY",
                    "resolverParameter": HMAC_SECRET}}))[1]
            hooked = manage("POST", "/v4/apis/", definition(
                "hooks", unique_topic, {"type": "subscription", "entrypoints": [
                    {"type": "webhook", "configuration": {"http": {"readTimeout": 2000}}}]},
                {"type": "subscription"}))[1]
            for api in (keyed, signed, hooked):
                assert manage("POST", f"/v4/apis/{api['id']}?action=START")[0] == 204
            status, application = manage("POST", "/applications", {"name": "consumer"})
            assert status == 201, application

            status, sub = manage(
                "POST", f"/v4/apis/{keyed['id']}/subscriptions?application={application['id']}"
                        f"&plan={keyed['plans'][0]['id']}")
            assert status == 201, sub
            api_key = sub["keys"][0]["key"]
            secrets["api key"] = api_key
            for auth in ({"type": "basic", "basic": {"username": "hook",
                                                     "password": HOOK_PASSWORD}},
                         {"type": "token", "token": {"value": HOOK_TOKEN}}):
                subscriber = manage("POST", "/applications", {"name": auth["type"]})[1]
                status, created = manage(
                    "POST", f"/v4/apis/{hooked['id']}/subscriptions", {
                        "application": subscriber["id"], "plan": hooked["plans"][0]["id"],
                        "configuration": {"entrypointId": "webhook", "callbackUrl": rx.url,
                                          "auth": auth, "secret": SIGNING_SECRET}})
                assert status == 201, created

            wait_until(lambda: gateway.request("POST", "/s/keyed", b"by-header",
                                               {"X-Gravitee-Api-Key": api_key})[0] == 202,
                       "the API key to be accepted")
            assert gateway.request("POST", f"/s/keyed?api-key={api_key}", b"by-query")[0] == 202
            assert gateway.request("POST", "/s/keyed", b"wrong key",
                                   {"X-Gravitee-Api-Key": api_key[::-1]})[0] == 401
            token = jwt.encode({"sub": "u1", "exp": int(time.time()) + 300}, HMAC_SECRET,
                               "HS256")
            secrets["jwt"] = token
            secrets["jwt signature"] = token.rsplit(".", 1)[1]
            assert gateway.request("POST", "/s/jwt", b"by-jwt",
                                   {"Authorization": f"Bearer {token}"})[0] == 202

            # both webhook subscriptions deliver every record, with their credentials
            assert rx.wait_for(lambda r: len(r.ok()) >= 6, 60), gateway.log()
            authorizations = {r.header("authorization") for r in rx.ok()}
            assert authorizations == {f"Bearer {HOOK_TOKEN}",
                                      f"Basic {secrets['webhook basic']}"}
            assert all(r.header("webhook-signature") for r in rx.ok())
    finally:
        gateway.stop()
        management.stop()

    logs = {"gateway": gateway.log_path.read_text(errors="replace"),
            "management": management.log_path.read_text(errors="replace")}
    assert "refused management login for user 'admin'" in logs["management"]
    assert "/s/keyed?api-key=" in logs["gateway"]   # the access log line is there, masked
    if log_format == "json":
        for name, text in logs.items():
            for line in text.splitlines():
                if line.startswith("{"):
                    json.loads(line)
    for process, text in logs.items():
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} appears in the {process} log"
    # ... nor in the database files (SQLite and its write-ahead log), read as raw bytes
    database = database_url.split("///", 1)[1]
    stored = b"".join(open(path, "rb").read() for path in (database, database + "-wal")
                      if os.path.exists(path))
    for what, secret in secrets.items():
        if what not in ("admin basic", "webhook basic", "jwt", "jwt signature"):
            assert secret.encode() not in stored, f"the {what} is in clear in the database"
