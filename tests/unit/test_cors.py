"""CORS on HTTP listeners (evgate/gateway/cors.py): the header logic table by table, the
definition's validation, and the dispatcher (preflight without plans, actual responses,
WebSocket Origin check) through Flask's test client with the mock endpoint."""
from __future__ import annotations

import copy
import uuid

import pytest

from evgate.definition import parse_definition
from evgate.definition.model import Cors
from evgate.errors import DefinitionError
from evgate.gateway.cors import CorsPolicy

from .management_fixtures import fast_hashing, management  # noqa: F401

APP = "https://app.example.com"
EVIL = "https://evil.example.net"


def policy(**fields) -> CorsPolicy:
    return CorsPolicy(Cors.model_validate({"enabled": True, **fields}))


# -- origins -------------------------------------------------------------------------------------
@pytest.mark.parametrize("allow, origin, allowed", [
    ([APP], APP, True),
    ([APP], "HTTPS://APP.EXAMPLE.COM", True),          # scheme and host are case-insensitive
    ([APP], EVIL, False),
    ([APP], "https://appXexample.com", False),          # an exact origin is not a regex
    ([APP], APP + ".evil.net", False),
    ([APP], "https://app.example.com:8443", False),
    ([APP], "null", False),
    (["null"], "null", True),
    (["*"], EVIL, True),
    ([r"https://[a-z]+\.example\.com"], APP, True),
    ([r"https://[a-z]+\.example\.com"], "https://app.example.com.evil.net", False),  # full match
    ([r"https://[a-z]+\.example\.com"], "http://app.example.com", False),
    ([APP], None, False),
    ([APP], "", False),
    (["*"], "https://" + "a" * 2000, False),              # longer than any browser origin
    ([r"http://127\.0\.0\.1:\d+"], "http://127.0.0.1:8080", True),
    (["http://[::1]:8080"], "http://[::1]:8080", True),
    # nested quantifiers are linear on RE2: accepted, and a hostile origin is just refused
    ([r"https://(a+)+\.example\.org"], "https://aaa.example.org", True),
    ([r"https://(a+)+\.example\.org"], "https://" + "a" * 1000 + "!", False),
    # a pattern too big for the origin's length refuses that origin (a 9,000-instruction program)
    ([r"https://(.?){1000}"], "https://" + "a" * 900, False),
    ([r"https://(.?){1000}"], "https://a", True),
])
def test_allowed_origins(allow, origin, allowed):
    assert policy(allowOrigin=allow).allows(origin) is allowed


@pytest.mark.parametrize("fields, origin, expected", [
    # an allowed origin is reflected; credentials and exposed headers follow
    ({"allowOrigin": [APP]}, APP, {"Access-Control-Allow-Origin": APP}),
    ({"allowOrigin": [APP], "allowCredentials": True, "exposeHeaders": ["X-Gravitee-Transaction-Id"]},
     APP, {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Credentials": "true",
           "Access-Control-Expose-Headers": "X-Gravitee-Transaction-Id"}),
    # another origin gets nothing at all
    ({"allowOrigin": [APP], "allowCredentials": True, "exposeHeaders": ["X-A"]}, EVIL, {}),
    ({"allowOrigin": [APP]}, None, {}),
    # '*' without credentials: '*' for everybody; with credentials: the origin itself
    ({"allowOrigin": ["*"]}, EVIL, {"Access-Control-Allow-Origin": "*"}),
    ({"allowOrigin": ["*"], "allowCredentials": True}, EVIL,
     {"Access-Control-Allow-Origin": EVIL, "Access-Control-Allow-Credentials": "true"}),
])
def test_actual_response_headers(fields, origin, expected):
    assert dict(policy(**fields).actual_headers(origin)) == expected


@pytest.mark.parametrize("fields, origin, method, headers, expected", [
    ({"allowOrigin": [APP], "allowHeaders": ["content-type"]}, APP, "POST", "content-type",
     {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Methods": "POST",
      "Access-Control-Allow-Headers": "content-type"}),
    ({"allowOrigin": [APP], "allowMethods": ["post", "GET"], "maxAge": 600}, APP, "POST", None,
     {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Methods": "POST, GET",
      "Access-Control-Max-Age": "600"}),
    ({"allowOrigin": [APP], "allowCredentials": True, "allowHeaders": ["*"]}, APP, "POST",
     "content-type, x-custom",
     {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Credentials": "true",
      "Access-Control-Allow-Methods": "POST",
      "Access-Control-Allow-Headers": "content-type, x-custom"}),
    ({"allowOrigin": ["*"], "allowMethods": ["*"]}, EVIL, "DELETE", None,
     {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "DELETE"}),
])
def test_preflight_allowed(fields, origin, method, headers, expected):
    answer, reason = policy(**fields).preflight_headers(origin, method, headers)
    assert reason == ""
    assert dict(answer) == expected


@pytest.mark.parametrize("fields, origin, method, headers, reason", [
    ({"allowOrigin": [APP]}, EVIL, "POST", None, "origin"),
    ({"allowOrigin": [APP]}, None, "POST", None, "origin"),
    ({"allowOrigin": [APP]}, APP, "POST", "content-type", "header"),      # JSON needs allowHeaders
    ({"allowOrigin": [APP], "allowHeaders": ["content-type"]}, APP, "POST",
     "content-type, authorization", "header"),
    ({"allowOrigin": [APP], "allowMethods": ["GET"]}, APP, "DELETE", None, "method"),
    ({"allowOrigin": [APP]}, APP, "PUT", None, "method"),
    ({"allowOrigin": [APP]}, APP, "GET\r\nX: y", None, "method name"),
    ({"allowOrigin": [APP], "allowHeaders": ["*"]}, APP, "POST", "x-a\r\nx-b", "header names"),
])
def test_preflight_refused(fields, origin, method, headers, reason):
    answer, why = policy(**fields).preflight_headers(origin, method, headers)
    assert answer == []
    assert reason in why


def test_private_network_only_when_allowed_and_asked():
    allowed = policy(allowOrigin=[APP], allowPrivateNetwork=True)
    assert dict(allowed.preflight_headers(APP, "GET", None, True)[0])[
        "Access-Control-Allow-Private-Network"] == "true"
    assert "Access-Control-Allow-Private-Network" not in dict(
        allowed.preflight_headers(APP, "GET", None, False)[0])
    assert "Access-Control-Allow-Private-Network" not in dict(
        policy(allowOrigin=[APP]).preflight_headers(APP, "GET", None, True)[0])


# -- the definition ------------------------------------------------------------------------------
def _definition(cors: dict | None, entrypoints: list[dict] | None = None,
                endpoint: str = "mock") -> dict:
    listener = {"type": "http", "paths": [{"path": "/cors"}],
                "entrypoints": entrypoints or [{"type": "http-post"}]}
    if cors is not None:
        listener["cors"] = cors
    configuration = ({"messageInterval": 1, "messageCount": 1} if endpoint == "mock"
                     else {"bootstrapServers": "kafka:9092", "topics": ["t"]})
    return {"id": str(uuid.uuid4()), "name": "cors", "definitionVersion": "4.0.0",
            "type": "async", "listeners": [listener],
            "endpointGroups": [{"name": "default", "type": endpoint, "endpoints": [
                {"name": "default", "type": endpoint, "configuration": configuration}]}]}


FULL_CORS = {"enabled": True, "allowOrigin": [APP, r"https://.*\.example\.org"],
             "allowHeaders": ["content-type"], "allowMethods": ["POST", "GET"],
             "allowCredentials": True, "exposeHeaders": ["X-Gravitee-Transaction-Id"],
             "maxAge": 600, "runPolicies": False, "allowPrivateNetwork": False}


def test_gravitee_cors_block_is_accepted_and_kept():
    api = parse_definition(_definition(FULL_CORS))
    assert api.listeners[0].cors.allowOrigin == FULL_CORS["allowOrigin"]
    assert api.model_dump(exclude_unset=True)["listeners"][0]["cors"] == FULL_CORS
    assert parse_definition(_definition({"enabled": False})).listeners[0].cors.maxAge == -1


@pytest.mark.parametrize("cors, path, words", [
    ({"enabled": True, "allowOrigin": ["https://(a"]}, "$.listeners[0].cors.allowOrigin[0]",
     "invalid regular expression"),
    ({"enabled": True, "allowOrigin": [APP, "https://(?!evil).*"]},
     "$.listeners[0].cors.allowOrigin[1]", "negative lookahead (?!...) is not supported"),
    ({"enabled": True, "allowOrigin": ["https://a\\.b\\Z"]}, "$.listeners[0].cors.allowOrigin[0]",
     "write \\z"),
    ({"enabled": True, "allowOrigin": ["x" * 600 + ".*"]}, "$.listeners[0].cors.allowOrigin[0]",
     "longer than"),
    ({"enabled": True, "allowOrigin": [" "]}, "$.listeners[0].cors.allowOrigin[0]", "empty"),
    ({"enabled": True, "allowHeaders": ["x-a\r\nSet-Cookie: a=b"]},
     "$.listeners[0].cors.allowHeaders[0]", "HTTP token"),
    ({"enabled": True, "exposeHeaders": ["a b"]}, "$.listeners[0].cors.exposeHeaders[0]",
     "HTTP token"),
    ({"enabled": True, "maxAge": -2}, "$.listeners[0].cors.maxAge", "greater than or equal"),
    ({"enabled": "maybe"}, "$.listeners[0].cors.enabled", "boolean"),
    ({"enabled": True, "allowOrigin": "https://a.b"}, "$.listeners[0].cors.allowOrigin",
     "list"),
])
def test_bad_cors_blocks_are_rejected_with_their_path(cors, path, words):
    with pytest.raises(DefinitionError) as raised:
        parse_definition(_definition(cors))
    problems = raised.value.problems
    assert any(p["path"] == path and words in p["message"] for p in problems), problems


# -- through the dispatcher --------------------------------------------------------------------
@pytest.fixture()
def gateway(config):
    from evgate.app import create_app
    from evgate.gateway.runtime import GatewayRuntime, Snapshot
    runtime = GatewayRuntime(config, None)
    cors = {"enabled": True, "allowOrigin": [APP], "allowHeaders": ["content-type"],
            "exposeHeaders": ["X-Gravitee-Transaction-Id"]}
    keyed = copy.deepcopy(cors)
    apis = [_definition(cors, [{"type": "http-post"}, {"type": "sse"},
                               {"type": "websocket"}]),
            _definition(keyed), _definition(None)]
    apis[1]["listeners"][0]["paths"] = [{"path": "/keyed"}]
    apis[2]["listeners"][0]["paths"] = [{"path": "/plain"}]
    keyless = {"name": "Keyless", "security": {"type": "key-less"}, "status": "published"}
    api_key = {"name": "Key", "security": {"type": "api-key"}, "status": "published"}
    plans = {apis[0]["id"]: [{"id": "p0", **keyless}], apis[1]["id"]: [{"id": "p1", **api_key}],
             apis[2]["id"]: [{"id": "p2", **keyless}]}
    runtime.apply(Snapshot(1, [{"id": a["id"], "deployed_definition": a} for a in apis], plans))
    app = create_app(config, runtime=runtime, start=False)
    yield app, runtime, apis
    runtime.stop(timeout=1)


PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type"}


def test_preflight_is_answered_without_plans(gateway):
    app, _, _ = gateway
    client = app.test_client()
    # /keyed has only an api-key plan: the preflight (which never carries a key) still passes
    for path in ("/cors", "/keyed"):
        response = client.options(path, headers=PREFLIGHT)
        assert response.status_code == 200, response.data
        assert response.headers["Access-Control-Allow-Origin"] == APP
        assert response.headers["Access-Control-Allow-Headers"] == "content-type"
        assert "Origin" in response.headers["Vary"]
        assert response.data == b""
    assert client.post("/keyed", data=b"x", headers={"Origin": APP}).status_code == 401


def test_preflight_from_another_origin_is_refused_without_cors_headers(gateway):
    app, _, _ = gateway
    response = app.test_client().options("/cors", headers={**PREFLIGHT, "Origin": EVIL})
    assert response.status_code == 400
    assert response.get_json()["key"] == "CORS_PREFLIGHT_FAILED"
    assert not [h for h in response.headers.keys() if h.startswith("Access-Control-Allow")]
    assert "Origin" in response.headers["Vary"]


def test_no_cors_block_means_no_preflight_answer(gateway):
    app, _, _ = gateway
    response = app.test_client().options("/plain", headers=PREFLIGHT)
    assert response.status_code == 405
    assert "Access-Control-Allow-Origin" not in response.headers


def test_actual_responses_carry_cors_headers_for_an_allowed_origin_only(gateway):
    app, _, _ = gateway
    client = app.test_client()
    accepted = client.post("/cors", data=b'{"a":1}', headers={"Origin": APP,
                                                              "Content-Type": "application/json"})
    assert accepted.status_code == 202
    assert accepted.headers["Access-Control-Allow-Origin"] == APP
    assert accepted.headers["Access-Control-Expose-Headers"] == "X-Gravitee-Transaction-Id"
    assert accepted.headers["Vary"] == "Origin"
    # errors too: the page must be able to read why
    refused = client.post("/keyed", data=b"x", headers={"Origin": APP})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == APP
    other = client.post("/cors", data=b"x", headers={"Origin": EVIL})
    assert other.status_code == 202
    assert not [h for h in other.headers.keys() if h.startswith("Access-Control-")]
    assert other.headers["Vary"] == "Origin"
    plain = client.post("/plain", data=b"x", headers={"Origin": APP})
    assert "Access-Control-Allow-Origin" not in plain.headers and "Vary" not in plain.headers


def test_sse_stream_carries_cors_headers(gateway):
    app, _, _ = gateway
    response = app.test_client().get("/cors", headers={"Origin": APP,
                                                       "Accept": "text/event-stream"})
    try:
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == APP
        assert response.mimetype == "text/event-stream"
    finally:
        response.close()


WS_UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def test_websocket_upgrade_from_a_disallowed_origin_is_403(gateway):
    app, runtime, _ = gateway
    response = app.test_client().get("/cors", headers={**WS_UPGRADE, "Origin": EVIL})
    assert response.status_code == 403
    assert response.get_json()["key"] == "CORS_ORIGIN_NOT_ALLOWED"
    assert not list(getattr(runtime, "streams", ()))   # no subscription was opened


def test_runpolicies_preflight_goes_through_plans(config):
    from evgate.app import create_app
    from evgate.gateway.runtime import GatewayRuntime, Snapshot
    runtime = GatewayRuntime(config, None)
    api = _definition({"enabled": True, "allowOrigin": [APP], "allowHeaders": ["content-type"],
                       "runPolicies": True})
    plans = {api["id"]: [{"id": "k", "name": "Key", "security": {"type": "api-key"},
                          "status": "published"}]}
    runtime.apply(Snapshot(1, [{"id": api["id"], "deployed_definition": api}], plans))
    try:
        response = create_app(config, runtime=runtime, start=False).test_client().options(
            "/cors", headers=PREFLIGHT)
        assert response.status_code == 401     # the api-key plan ran
        assert "Access-Control-Allow-Origin" not in response.headers
    finally:
        runtime.stop(timeout=1)


# -- management API and CLI -------------------------------------------------------------------
def test_management_api_keeps_the_cors_block_and_rejects_a_bad_regex(management):
    from .management_fixtures import B, Api, api_definition
    api = Api(management.test_client())
    definition = api_definition(path="/cors-mgmt")
    definition["listeners"][0]["cors"] = FULL_CORS
    created = api.create_api(definition)
    assert created["listeners"][0]["cors"] == FULL_CORS
    assert api.call("GET", f"{B}/v4/apis/{created['id']}", 200)["listeners"][0]["cors"] \
        == FULL_CORS
    bad = copy.deepcopy(definition)
    bad["listeners"][0]["paths"] = [{"path": "/cors-bad"}]
    bad["listeners"][0]["cors"] = {"enabled": True, "allowOrigin": [APP, "https://(x"]}
    body = api.call("POST", B + "/v4/apis", 400, json=bad)
    assert "$.listeners[0].cors.allowOrigin[1]" in str(body)
    updated = api.call("PUT", f"{B}/v4/apis/{created['id']}", 400,
                       json={**bad, "listeners": [{**bad["listeners"][0],
                                                   "paths": [{"path": "/cors-mgmt"}]}]})
    assert "$.listeners[0].cors.allowOrigin[1]" in str(updated)


def test_cli_import_keeps_the_cors_block(database_url, monkeypatch, fast_hashing, tmp_path):
    import json

    from click.testing import CliRunner

    from evgate.cli import main

    from .management_fixtures import api_definition
    monkeypatch.setenv("EVGATE_DATABASE_URL", database_url)
    definition = api_definition(path="/cors-cli")
    definition["listeners"][0]["cors"] = FULL_CORS
    path = tmp_path / "api.json"
    path.write_text(json.dumps(definition))
    runner = CliRunner()
    imported = runner.invoke(main, ["--json", "apis", "import", str(path)],
                             catch_exceptions=False)
    assert imported.exit_code == 0, imported.output
    api_id = json.loads(imported.stdout)[0]["id"]
    exported = runner.invoke(main, ["--json", "apis", "export", api_id], catch_exceptions=False)
    assert json.loads(exported.stdout)["listeners"][0]["cors"] == FULL_CORS
    definition["listeners"][0]["cors"] = {"enabled": True, "allowOrigin": ["(?>a*)b"]}
    path.write_text(json.dumps(definition))
    refused = runner.invoke(main, ["--json", "apis", "import", str(path)])
    assert refused.exit_code != 0
    assert "$.listeners[0].cors.allowOrigin[0]" in refused.output + (refused.stderr or "")
