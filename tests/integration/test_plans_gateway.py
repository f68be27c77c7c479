"""api-key and jwt plans through a real gunicorn gateway and the real Kafka broker.

Subscriptions are made with the service layer on the gateway's database; the gateway picks
them up through its repository sync (no restart), which these tests wait for by polling.
"""
from __future__ import annotations

import json
import time

import jwt
import pytest

from evgate.repository import open_repository
from evgate.services.applications import ApplicationService
from evgate.services.subscriptions import SubscriptionService
from evgate.services.principal import LOCAL_OPERATOR
from tests.support.waiting import wait_for
from tests.support.kafka_broker import consume_all, create_topic

pytestmark = pytest.mark.integration

SECRET = "a-shared-hmac-secret-of-at-least-32-bytes!"


def _definition(path: str, topic: str, plans: list[dict]) -> dict:
    return {
        "name": path.strip("/"), "definitionVersion": "4.0.0", "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}],
                       "entrypoints": [{"type": "http-post"}]}],
        "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [
            {"name": "default", "type": "kafka", "configuration": {"topics": [topic]}}]}],
        "plans": plans,
    }


def _wait_for(predicate, what: str, timeout: float = 15.0):
    """Wait for the gateway's sync to apply a change (the interval is 500 ms in tests)."""
    return wait_for(predicate, what, timeout)


def test_api_key_plan(gateway_factory, database_url, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    plan = {"id": "plan-key", "name": "key", "security": {"type": "api-key"},
            "status": "published"}
    gateway = gateway_factory([_definition("/keyed", unique_topic, [plan])], workers=1)
    repo = open_repository(database_url)
    try:
        app = ApplicationService(repo, LOCAL_OPERATOR).create({"name": "consumer"})
        subs = SubscriptionService(repo, LOCAL_OPERATOR)
        sub = subs.create(plan_id="plan-key", application_id=app["id"])
        key = sub["keys"][0]["key"]

        status, _, body = gateway.request("POST", "/keyed", b"no key")
        assert status == 401
        assert json.loads(body)["http_status_code"] == 401
        assert gateway.request("POST", "/keyed", b"x",
                               {"X-Gravitee-Api-Key": "wrong"})[0] == 401

        _wait_for(lambda: gateway.request("POST", "/keyed", b"by-header",
                                          {"X-Gravitee-Api-Key": key})[0] == 202,
                  "the new key to be accepted")
        assert gateway.request("POST", f"/keyed?api-key={key}", b"by-query")[0] == 202
        contents = {m.value() for m in consume_all(kafka_bootstrap, unique_topic, 2)}
        assert {b"by-header", b"by-query"} <= contents

        subs.change_status(None, sub["id"], "PAUSED")
        _wait_for(lambda: gateway.request("POST", "/keyed", b"x",
                                          {"X-Gravitee-Api-Key": key})[0] == 401,
                  "the paused subscription's key to be refused")
        subs.change_status(None, sub["id"], "RESUMED")
        _wait_for(lambda: gateway.request("POST", "/keyed", b"x",
                                          {"X-Gravitee-Api-Key": key})[0] == 202,
                  "the resumed key to be accepted again")
        subs.close(None, sub["id"])
        _wait_for(lambda: gateway.request("POST", "/keyed", b"x",
                                          {"X-Gravitee-Api-Key": key})[0] == 401,
                  "the closed subscription's key to be refused")
    finally:
        repo.dispose()


def _rsa_pair():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public_pem


def test_jwt_plans(gateway_factory, database_url, kafka_bootstrap, unique_topic):
    create_topic(kafka_bootstrap, unique_topic)
    private, public_pem = _rsa_pair()
    hs_plan = {"id": "plan-hs", "name": "jwt-hs", "status": "published", "security": {
        "type": "jwt", "configuration": {"signature": "HMAC_HS256",
                                         "publicKeyResolver": "GIVEN_KEY",
                                         "resolverParameter": SECRET,
                                         "issuer": "https://issuer.test", "audience": "evgate"}}}
    rs_plan = {"id": "plan-rs", "name": "jwt-rs", "status": "published", "security": {
        "type": "jwt", "configuration": {"signature": "RSA_RS256",
                                         "publicKeyResolver": "GIVEN_KEY",
                                         "resolverParameter": public_pem}}}
    gateway = gateway_factory([_definition("/jwt-hs", unique_topic, [hs_plan]),
                               _definition("/jwt-rs", unique_topic, [rs_plan])], workers=1)
    now = int(time.time())
    good = {"iss": "https://issuer.test", "aud": "evgate", "exp": now + 300, "sub": "u1"}

    def post(path, token, body=b"m"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return gateway.request("POST", path, body, headers)[0]

    assert post("/jwt-hs", jwt.encode(good, SECRET, "HS256"), b"hs-ok") == 202
    assert post("/jwt-hs", None) == 401
    assert post("/jwt-hs", "not.a.token") == 401
    assert post("/jwt-hs", jwt.encode({**good, "exp": now - 60}, SECRET, "HS256")) == 401
    assert post("/jwt-hs", jwt.encode({**good, "iss": "https://evil"}, SECRET, "HS256")) == 401
    assert post("/jwt-hs", jwt.encode({**good, "aud": "other"}, SECRET, "HS256")) == 401
    assert post("/jwt-hs", jwt.encode({k: v for k, v in good.items() if k != "exp"}, SECRET,
                                      "HS256")) == 401  # requireExpiration defaults to true
    assert post("/jwt-hs", jwt.encode(good, "another-secret-another-secret-xx", "HS256")) == 401
    # alg confusion: an HS256 token signed with the RSA public key must not pass the RS plan
    assert post("/jwt-rs", jwt.encode(good, SECRET, "HS256")) == 401

    rs_token = jwt.encode({"exp": now + 300, "azp": "client-1"}, private, "RS256")
    assert post("/jwt-rs", rs_token, b"rs-ok") == 202
    assert post("/jwt-rs", jwt.encode({"exp": now - 5}, private, "RS256")) == 401
    contents = {m.value() for m in consume_all(kafka_bootstrap, unique_topic, 2)}
    assert {b"hs-ok", b"rs-ok"} <= contents

    # A subscribed client whose subscription is paused is refused; others still pass.
    repo = open_repository(database_url)
    try:
        app = ApplicationService(repo, LOCAL_OPERATOR).create({"name": "c1",
                                               "settings": {"app": {"client_id": "client-1"}}})
        subs = SubscriptionService(repo, LOCAL_OPERATOR)
        sub = subs.create(plan_id="plan-rs", application_id=app["id"])
        subs.change_status(None, sub["id"], "PAUSED")
        _wait_for(lambda: post("/jwt-rs", rs_token) == 401, "the paused client to be refused")
        other = jwt.encode({"exp": now + 300, "azp": "client-2"}, private, "RS256")
        assert post("/jwt-rs", other) == 202
    finally:
        repo.dispose()


def test_only_published_plans_admit(gateway_factory, unique_topic, kafka_bootstrap):
    plan = {"id": "plan-staging", "name": "open", "security": {"type": "key-less"},
            "status": "staging"}
    gateway = gateway_factory([_definition("/staged", unique_topic, [plan])], workers=1)
    status, _, body = gateway.request("POST", "/staged", b"x")
    assert status == 401 and json.loads(body)["http_status_code"] == 401
