"""The gateway's raw-WSGI fast path (evgate/gateway/wsgi_dispatch.py): what it serves itself,
what it hands to Flask, and that both answer alike."""
from __future__ import annotations

import json
import uuid

import pytest

from flask import Response

from evgate.app import create_app
from evgate.gateway.runtime import GatewayRuntime, Snapshot


def _api(path: str, entrypoints: list[dict]) -> dict:
    return {
        "id": str(uuid.uuid4()), "name": f"api {path}", "apiVersion": "1.0",
        "definitionVersion": "4.0.0", "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}], "entrypoints": entrypoints}],
        "endpointGroups": [{"name": "default", "type": "mock", "endpoints": [{
            "name": "default", "type": "mock",
            "configuration": {"messageInterval": 1, "messageCount": 1}}]}],
        "flows": [],
    }


@pytest.fixture()
def gateway(config):
    runtime = GatewayRuntime(config, None)
    apis = [_api("/ingest", [{"type": "http-post"}]),
            _api("/stream", [{"type": "sse"}]),
            _api("/poll", [{"type": "http-get", "configuration": {
                "messagesLimitCount": 1, "messagesLimitDurationMs": 2000}}])]
    plans = {a["id"]: [{"id": f"keyless-{a['id']}", "name": "Keyless",
                        "security": {"type": "key-less"}, "status": "published"}] for a in apis}
    runtime.apply(Snapshot(1, [{"id": a["id"], "deployed_definition": a} for a in apis], plans))
    app = create_app(config, runtime=runtime, start=False)
    flask_calls: list[str] = []
    view = app.view_functions["dispatch"]

    def counting_view(path: str):
        flask_calls.append(path)
        return view(path)
    app.view_functions["dispatch"] = counting_view
    yield app, flask_calls
    runtime.stop(timeout=1)


def test_http_post_is_served_without_flask_routing(gateway):
    app, flask_calls = gateway
    response = app.test_client().post("/ingest", data=b'{"a": 1}',
                                      headers={"X-Gravitee-Transaction-Id": "tx-1"})
    assert response.status_code == 202
    assert response.headers["X-Gravitee-Transaction-Id"] == "tx-1"
    assert response.headers["X-Gravitee-Request-Id"] == "tx-1"
    assert flask_calls == []


def test_http_get_pages_are_served_without_flask_routing(gateway):
    """A page is one response body: no request context (its CPU per page, bench/poll.py);
    its answer, errors included, is the same JSON as on Flask's path."""
    app, flask_calls = gateway
    client = app.test_client()
    page = client.get("/poll?limit=1", headers={"Accept": "application/json",
                                                "X-Gravitee-Transaction-Id": "tx-2"})
    assert page.status_code == 200, page.data
    body = page.get_json()
    assert len(body["items"]) == 1 and body["pagination"]["nextCursor"]
    assert page.headers["X-Gravitee-Transaction-Id"] == "tx-2"
    bad = client.get("/poll?limit=-3", headers={"Accept": "application/json"})
    assert bad.status_code == 400
    assert bad.get_json()["http_status_code"] == 400
    unsupported = client.get("/poll", headers={"Accept": "image/png"})
    assert unsupported.status_code == 400
    assert "Accept" in unsupported.get_json()["message"]
    assert flask_calls == []


def test_errors_on_the_fast_path_keep_their_json_bodies(gateway):
    app, flask_calls = gateway
    client = app.test_client()
    missing = client.post("/nowhere", data=b"x")
    assert missing.status_code == 404
    assert missing.get_json() == {"message": "No context-path matches the request URI.",
                                  "http_status_code": 404}
    assert missing.headers["X-Gravitee-Transaction-Id"]
    wrong_method = client.put("/ingest", data=b"x")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"
    assert flask_calls == []


def test_streaming_entrypoints_are_handed_to_flask_with_one_transaction_id(gateway):
    app, flask_calls = gateway
    response = app.test_client().get("/stream", headers={"Accept": "text/event-stream"})
    try:
        assert response.status_code == 200
        assert flask_calls == ["stream"]
        assert response.headers["X-Gravitee-Transaction-Id"]
    finally:
        response.close()


def test_methods_outside_the_catch_all_rule_get_flask_405(gateway):
    app, _ = gateway
    response = app.test_client().open("/ingest", method="PROPFIND")
    assert response.status_code == 405


def test_draining_answers_503_with_connection_close(gateway):
    app, _ = gateway
    app.extensions["evgate.runtime"].draining = True
    response = app.test_client().post("/ingest", data=b"x")
    assert response.status_code == 503
    assert response.headers["Connection"] == "close"
    assert response.headers["Retry-After"] == "1"
    assert json.loads(response.data)["http_status_code"] == 503


# -- _respond: werkzeug's response call without its fix-ups when none applies (issue 11) ----------
def _call(respond, response, method="POST"):
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, list(headers)
    body = respond(response, {"REQUEST_METHOD": method, "SERVER_NAME": "gw", "SERVER_PORT": "80",
                              "wsgi.url_scheme": "http", "PATH_INFO": "/in"}, start_response)
    data = b"".join(body)
    getattr(body, "close", lambda: None)()
    return seen["status"], seen["headers"], data


def _werkzeug(response, method="POST"):
    return _call(lambda r, environ, start: r(environ, start), response, method)


@pytest.mark.parametrize("make,method", [
    (lambda: Response(b"", status=202, content_type="text/plain"), "POST"),
    (lambda: Response(b'{"a":1}', status=200, mimetype="application/json"), "GET"),
    (lambda: Response(b"hello", status=202), "HEAD"),                  # no body for HEAD
    (lambda: Response(b"", status=204), "POST"),                        # no Content-Length
    (lambda: Response(b"", status=201, headers={"Location": "/x/1"}), "POST"),
    (lambda: Response([b"a", b"b"], status=200), "GET"),                 # no Content-Length
    (lambda: Response(b"x", status=503, headers={"Retry-After": "1"}), "POST"),
    (lambda: Response(b"x", status=200, headers={"content-location": "/x"}), "GET"),  # any case
])
def test_the_fast_response_call_answers_what_werkzeug_answers(make, method):
    from evgate.gateway.wsgi_dispatch import _respond
    response = make()
    response.headers["X-Gravitee-Transaction-Id"] = "tx"
    assert _call(_respond, response, method) == _werkzeug(make_with_tx(make), method)


def make_with_tx(make):
    response = make()
    response.headers["X-Gravitee-Transaction-Id"] = "tx"
    return response


def test_close_callbacks_still_run_on_the_fast_path():
    from evgate.gateway.wsgi_dispatch import _respond
    closed = []
    response = Response(b"", status=202)
    response.call_on_close(lambda: closed.append(True))
    _call(_respond, response)
    assert closed == [True]


def test_a_request_id_set_by_a_policy_is_kept_in_any_case():
    from evgate.gateway.wsgi_dispatch import GatewayDispatcher
    dispatcher = GatewayDispatcher.__new__(GatewayDispatcher)
    dispatcher.runtime = type("Runtime", (), {"draining": False})()
    kept = dispatcher._finish(Response(b"", headers={"x-gravitee-request-id": "mine"}), "tx")
    assert kept.headers.getlist("X-Gravitee-Request-Id") == ["mine"]
    assert kept.headers["X-Gravitee-Transaction-Id"] == "tx"
    added = dispatcher._finish(Response(b""), "tx")
    assert added.headers["X-Gravitee-Request-Id"] == "tx"
