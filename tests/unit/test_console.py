"""The web console (evgate/management/console): sign-in, session, CSRF and roles, attacked
through the Flask test client. The browser tests are tests/integration/test_console_browser.py."""
from __future__ import annotations

import re
import time

import pytest

from .management_fixtures import (ADMIN, B, Api, api_definition, basic, client,  # noqa: F401
                                  fast_hashing, management)

C = "/console"


def _token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def sign_in(client, username: str = "admin", password: str = "admin-secret"):
    token = _token(client.get(C + "/login").get_data(True))
    response = client.post(C + "/login", data={"username": username, "password": password,
                                                "csrf_token": token})
    assert response.status_code == 303, response.get_data(True)
    return _token(client.get(C + "/apis").get_data(True))


@pytest.fixture
def api(client):
    """An API with a manual api-key plan, and alice's and bob's applications subscribed."""
    helper = Api(client)
    helper.call("PUT", B + "/users/alice", 200, json={"password": "alice-pw", "roles": ["USER"]})
    helper.call("PUT", B + "/users/bob", 200, json={"password": "bob-pw", "roles": ["USER"]})
    created = helper.create_api()
    helper.call("POST", B + f"/v4/apis/{created['id']}?action=START", 204)
    plan = helper.call("POST", B + f"/v4/apis/{created['id']}/plans", 201, json={
        "name": "keys", "security": {"type": "api-key"}, "validation": "manual"})
    helper.call("POST", B + f"/v4/apis/{created['id']}/plans/{plan['id']}/_publish", 200)
    subs = {}
    for user in ("alice", "bob"):
        app = helper.call("POST", "/portal/environments/DEFAULT/applications", 201,
                          headers=basic(user, f"{user}-pw"), json={"name": f"{user}-app"})
        sub = helper.call("POST", "/portal/environments/DEFAULT/subscriptions", 201,
                          headers=basic(user, f"{user}-pw"),
                          json={"application": app["id"], "plan": plan["id"]})
        subs[user] = (app, sub)
    return {"api": created, "plan": plan, "subs": subs}


# -- sign-in and session ------------------------------------------------------------------------
def test_no_session_redirects_to_sign_in(client):
    for path in ("/apis", "/subscriptions", "/applications", "/charts"):
        response = client.get(C + path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith(C + "/login?next=")


def test_console_does_not_take_basic_auth_instead_of_a_session(client):
    response = client.get(C + "/apis", headers=ADMIN)
    assert response.status_code == 302  # Basic credentials do not sign a browser in


def test_sign_in_sets_a_hardened_cookie_and_sign_out_clears_it(client):
    token = sign_in(client)
    cookie = client.get_cookie("evgate_console", path=C)
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    assert not cookie.secure  # plain HTTP in this test (Secure over TLS: next test)
    assert client.get(C + "/apis").status_code == 200
    response = client.post(C + "/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.get(C + "/apis").status_code == 302


def test_cookie_is_secure_over_tls(client):
    token = _token(client.get(C + "/login", base_url="https://localhost").get_data(True))
    response = client.post(C + "/login", base_url="https://localhost", data={
        "username": "admin", "password": "admin-secret", "csrf_token": token})
    assert response.status_code == 303
    assert "Secure" in response.headers["Set-Cookie"]
    assert "SameSite=Strict" in response.headers["Set-Cookie"]


def test_a_session_expires_on_the_server_even_if_the_cookie_is_replayed(client, monkeypatch):
    sign_in(client)
    stolen = client.get_cookie("evgate_console", path=C).value
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 480 * 60 + 5)
    fresh = client.application.test_client()
    fresh.set_cookie("evgate_console", stolen, path=C)
    assert fresh.get(C + "/apis").status_code == 302


def test_a_forged_session_cookie_is_ignored(client):
    client.set_cookie("evgate_console", '{"user": "admin", "at": 9999999999}', path=C)
    assert client.get(C + "/apis").status_code == 302


def test_wrong_password_is_refused_then_throttled_like_the_api(client):
    token = _token(client.get(C + "/login").get_data(True))
    for _ in range(10):  # the per-address limit
        response = client.post(C + "/login", data={"username": "admin", "password": "nope",
                                                    "csrf_token": token})
        assert response.status_code == 401
        assert "wrong user name or password" in response.get_data(True)
    response = client.post(C + "/login", data={"username": "admin", "password": "admin-secret",
                                                "csrf_token": token})
    assert response.status_code == 429 and response.headers["Retry-After"].isdigit()
    # the throttle is the one the Basic-auth API uses: it refuses there too
    assert client.get(B + "/v4/apis", headers=ADMIN).status_code == 429


def test_sign_in_replaces_the_session_and_its_csrf_token(client):
    before = _token(client.get(C + "/login").get_data(True))
    after = sign_in(client)
    assert before != after  # no fixation of a pre-login session


def test_next_never_leaves_the_console(client):
    token = _token(client.get(C + "/login").get_data(True))
    response = client.post(C + "/login", data={"username": "admin", "password": "admin-secret",
                                                "csrf_token": token,
                                                "next": "//evil.example/console/"})
    assert response.status_code == 303 and response.headers["Location"] == C + "/apis"


# -- CSRF -----------------------------------------------------------------------------------------
def test_post_without_or_with_a_wrong_csrf_token_is_refused(client, api):
    sign_in(client)
    api_id = api["api"]["id"]
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post(C + f"/apis/{api_id}/stop", data=data)
        assert response.status_code == 400
        assert "CSRF" in response.get_data(True)
    assert client.get(B + f"/v4/apis/{api_id}", headers=ADMIN).get_json()["state"] == "STARTED"


def test_another_sessions_token_does_not_pass(client, api):
    other = client.application.test_client()
    foreign = sign_in(other)
    sign_in(client)
    response = client.post(C + f"/apis/{api['api']['id']}/stop", data={"csrf_token": foreign})
    assert response.status_code == 400


def test_login_form_needs_the_csrf_token_too(client):
    response = client.post(C + "/login", data={"username": "admin", "password": "admin-secret"})
    assert response.status_code == 400
    assert client.get(C + "/apis").status_code == 302


def test_csrf_token_in_the_header_is_accepted(client, api):
    token = sign_in(client)
    response = client.post(C + f"/apis/{api['api']['id']}/stop",
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 303
    assert client.get(B + f"/v4/apis/{api['api']['id']}", headers=ADMIN).get_json()[
        "state"] == "STOPPED"


# -- roles and ownership ----------------------------------------------------------------------
def test_user_sees_no_admin_buttons(client, api):
    sign_in(client, "alice", "alice-pw")
    page = client.get(C + f"/apis/{api['api']['id']}").get_data(True)
    for button in ('id="api-start"', 'id="api-stop"', 'id="api-deploy"', 'id="save-definition"',
                   'class="approve"', "Create a plan", 'id="live-link"'):
        assert button not in page
    assert 'id="import"' not in client.get(C + "/apis").get_data(True)
    assert "Charts" not in client.get(C + "/apis").get_data(True)


def test_user_admin_posts_are_forbidden_and_change_nothing(client, api):
    token = sign_in(client, "alice", "alice-pw")
    api_id = api["api"]["id"]
    _, sub = api["subs"]["alice"]
    for path in (f"/apis/{api_id}/stop", f"/apis/{api_id}/definition", "/apis/import",
                 f"/apis/{api_id}/plans/{api['plan']['id']}/close",
                 f"/apis/{api_id}/subscriptions/{sub['id']}/approve"):
        response = client.post(C + path, data={"csrf_token": token, "definition": "{}"})
        assert response.status_code == 403, path
    assert client.get(B + f"/v4/apis/{api_id}", headers=ADMIN).get_json()["state"] == "STARTED"
    stored = client.get(B + f"/v4/apis/{api_id}/subscriptions/{sub['id']}",
                        headers=ADMIN).get_json()
    assert stored["status"] == "PENDING"


def test_user_gets_404_on_other_users_applications(client, api):
    sign_in(client, "alice", "alice-pw")
    bob_app, bob_sub = api["subs"]["bob"]
    alice_app, alice_sub = api["subs"]["alice"]
    assert client.get(C + f"/applications/{bob_app['id']}").status_code == 404
    assert client.get(C + f"/applications/{alice_app['id']}").status_code == 200
    listing = client.get(C + "/subscriptions").get_data(True)
    assert alice_sub["id"] in listing and bob_sub["id"] not in listing
    apps = client.get(C + "/applications").get_data(True)
    assert "alice-app" in apps and "bob-app" not in apps


def test_user_cannot_open_the_live_view(client, api):
    sign_in(client, "alice", "alice-pw")
    assert client.get(C + f"/apis/{api['api']['id']}/live").status_code == 403
    assert client.get(C + f"/apis/{api['api']['id']}/live/stream").status_code == 403


def test_a_demoted_admin_loses_admin_at_once(client, api):
    helper = Api(client)
    helper.call("PUT", B + "/users/carol", 200, json={"password": "carol-pw", "roles": ["ADMIN"]})
    token = sign_in(client, "carol", "carol-pw")
    helper.call("PUT", B + "/users/carol", 200, json={"password": "carol-pw", "roles": ["USER"]})
    response = client.post(C + f"/apis/{api['api']['id']}/stop", data={"csrf_token": token})
    assert response.status_code == 403


# -- admin actions go through the services --------------------------------------------------------
def test_admin_approves_a_pending_subscription(client, api):
    token = sign_in(client)
    _, sub = api["subs"]["alice"]
    page = client.get(C + "/subscriptions?status=PENDING").get_data(True)
    assert sub["id"] in page and 'class="approve"' in page
    response = client.post(C + f"/apis/{api['api']['id']}/subscriptions/{sub['id']}/approve",
                           data={"csrf_token": token, "next": "/console/subscriptions"})
    assert response.status_code == 303
    stored = client.get(B + f"/v4/apis/{api['api']['id']}/subscriptions/{sub['id']}",
                        headers=ADMIN).get_json()
    assert stored["status"] == "ACCEPTED" and stored["keys"]  # the service issued the key


def test_bad_definition_shows_problems_at_their_json_path(client, api):
    token = sign_in(client)
    bad = api_definition()
    bad["listeners"][0]["entrypoints"][0]["type"] = "carrier-pigeon"
    import json
    response = client.post(C + f"/apis/{api['api']['id']}/definition",
                           data={"csrf_token": token, "definition": json.dumps(bad)})
    assert response.status_code == 400
    page = response.get_data(True)
    assert "$.listeners[0].entrypoints[0].type" in page and "carrier-pigeon" in page
    response = client.post(C + f"/apis/{api['api']['id']}/definition",
                           data={"csrf_token": token, "definition": "{not json"})
    assert response.status_code == 400 and "not JSON" in response.get_data(True)


def test_import_a_file(client):
    import io
    import json
    token = sign_in(client)
    response = client.post(C + "/apis/import", data={
        "csrf_token": token,
        "definition": (io.BytesIO(json.dumps(api_definition("/imported", "imported")).encode()),
                       "api.json")}, content_type="multipart/form-data")
    assert response.status_code == 303
    listing = client.get(C + "/apis").get_data(True)
    assert "imported" in listing and "/imported" in listing and "STARTED" in listing


def test_unknown_actions_are_400_not_500(client, api):
    token = sign_in(client)
    for path in (f"/apis/{api['api']['id']}/explode",
                 f"/apis/{api['api']['id']}/plans/{api['plan']['id']}/explode"):
        assert client.post(C + path, data={"csrf_token": token}).status_code == 400


def test_live_view_bad_filter_is_a_400_naming_it(client, api):
    sign_in(client)
    response = client.get(C + f"/apis/{api['api']['id']}/live",
                          query_string={"filter": "{#message.content ==}"})
    assert response.status_code == 400 and "filter:" in response.get_data(True)
    response = client.get(C + f"/apis/{api['api']['id']}/live/stream",
                          query_string={"filter": "{#message.content ==}"})
    assert response.status_code == 400


def test_user_cannot_read_the_charts(client, api):
    sign_in(client, "alice", "alice-pw")
    assert client.get(C + "/charts").status_code == 403
    assert client.get(C + "/charts/data.json").status_code == 403


def test_charts_rates_and_latency_from_two_scrapes():
    from evgate.management.console.charts import summary
    bucket = "evgate_produce_latency_seconds_bucket"
    before = {("evgate_requests_total", "a"): 10.0, (bucket, "0.001"): 0.0,
              (bucket, "0.01"): 5.0, (bucket, "+Inf"): 5.0}
    now = {("evgate_requests_total", "a"): 30.0, (bucket, "0.001"): 90.0,
           (bucket, "0.01"): 105.0, (bucket, "+Inf"): 105.0,
           ("evgate_open_connections", "a"): 3.0}
    data = summary(now, before, 10.0)
    assert data["apis"]["a"]["requests"] == 2.0 and data["apis"]["a"]["connections"] == 3.0
    # 100 new observations: 90 under 1 ms, 10 under 10 ms
    assert data["latencyMs"] == {"p50": 1.0, "p95": 10.0, "p99": 10.0}
    assert summary(now, None, 0)["latencyMs"]["p50"] is None  # no interval yet: no rate


@pytest.fixture
def metrics_node():
    """A stand-in gateway node: a real HTTP server answering /_node/metrics with `text`."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        text = ""

        def do_GET(self):  # noqa: N802
            body = Handler.text.encode()
            self.send_response(200 if self.path == "/_node/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Handler
    server.shutdown()
    server.server_close()


def test_webhook_subscription_shows_its_delivery_counts_and_charts_read_the_node(
        repo, database_url, fast_hashing, metrics_node):
    from evgate.config import Config
    from evgate.management.app import create_management_app
    from evgate.management.console import charts

    from .management_fixtures import push_api_definition
    url, handler = metrics_node
    app = create_management_app(Config.from_env({}, database_url=database_url,
                                                admin_password="admin-secret",
                                                console_node_urls=(url,)), repository=repo)
    client = app.test_client()
    helper = Api(client)
    api_id = helper.create_api(push_api_definition())["id"]
    plan = helper.create_plan(api_id, "subscription")
    application = helper.call("POST", "/portal/environments/DEFAULT/applications", 201,
                              json={"name": "hooks-app"})
    sub = helper.call("POST", "/portal/environments/DEFAULT/subscriptions", 201, json={
        "application": application["id"], "plan": plan["id"],
        "configuration": {"entrypointId": "webhook",
                          "callbackUrl": "http://93.184.216.34/hook"}})
    handler.text = (
        f'evgate_webhook_deliveries_total{{subscription="{sub["id"]}",outcome="delivered"}} 7\n'
        f'evgate_webhook_deliveries_total{{subscription="{sub["id"]}",outcome="dlq"}} 1\n'
        f'evgate_webhook_retries_total{{subscription="{sub["id"]}"}} 2\n'
        f'evgate_requests_total{{api="{api_id}",entrypoint="webhook",status="200"}} 5\n')
    charts._deliveries.update(at=0.0, counts={})
    sign_in(client)
    page = client.get(C + "/subscriptions").get_data(True)
    assert "delivered 7 · retries 2 · DLQ 1" in page
    charts._last.clear()
    first = client.get(C + "/charts/data.json").get_json()
    assert first["nodes"] == [{"url": url, "ok": True}]
    assert first["names"][api_id] == "hooks"
    # a node that does not answer is named, not a 500
    app.extensions["evgate.config"]._values["console_node_urls"] = ("http://127.0.0.1:9",)
    down = client.get(C + "/charts/data.json").get_json()
    assert down["nodes"][0]["ok"] is False and down["nodes"][0]["url"] == "http://127.0.0.1:9"


def test_session_signing_key_comes_from_the_first_secrets_key():
    from evgate.security.sealing import Keyring, generate_key
    first, second = generate_key(), generate_key()
    key = Keyring([first, second]).derive("console-session")
    assert len(key) == 32 and key == Keyring([first]).derive("console-session")
    assert key != Keyring([second, first]).derive("console-session")  # rotation signs out
    assert key != Keyring([first]).derive("something-else")
    assert first.encode() not in key


def test_the_apis_table_refreshes_itself_with_the_local_htmx(client):
    sign_in(client)
    page = client.get(C + "/apis").get_data(True)
    assert 'hx-trigger="every 10s"' in page and "/console/static/vendor/htmx.min.js" in page
    assert "https://" not in page  # no asset from the internet
    assert client.get(C + "/static/vendor/htmx.min.js").status_code == 200


def test_an_oversized_upload_is_413_before_anything_is_parsed(client):
    import io
    token = sign_in(client)
    response = client.post(C + "/apis/import", data={
        "csrf_token": token, "definition": (io.BytesIO(b" " * (9 * 1024 * 1024)), "big.json")},
        content_type="multipart/form-data")
    assert response.status_code == 413
