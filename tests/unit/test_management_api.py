"""Management REST API through Flask's test client on SQLite: every endpoint, auth, bad input."""
from __future__ import annotations

import json

import pytest

from .management_fixtures import (ADMIN, Api, B, P, api, api_definition, basic, client,  # noqa: F401
                                  fast_hashing, management, push_api_definition)


# -- auth ---------------------------------------------------------------------------------------
def test_no_credentials_is_401_with_basic_challenge(client):
    response = client.get(B + "/v4/apis")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    body = response.get_json()
    assert body["http_status"] == 401 and body["message"]


def test_wrong_password_is_401(client):
    response = client.get(B + "/v4/apis", headers=basic("admin", "nope"))
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_unknown_user_is_401(client):
    assert client.get(B + "/v4/apis", headers=basic("ghost", "x")).status_code == 401


def test_user_role_reads_but_cannot_write(api, client):
    api.call("PUT", B + "/users/reader", 200, json={"password": "pw-reader", "roles": ["USER"]})
    reader = basic("reader", "pw-reader")
    assert client.get(B + "/v4/apis", headers=reader).status_code == 200
    response = client.post(B + "/v4/apis", headers=reader, json=api_definition())
    assert response.status_code == 403
    assert response.get_json()["technicalCode"] == "auth.forbidden"
    assert client.get(B + "/users", headers=reader).status_code == 403
    # ... but the consumer-side portal is open to users
    response = client.post(P + "/applications", headers=reader, json={"name": "mine"})
    assert response.status_code == 201
    assert response.get_json()["owner"] == "reader"


def test_admin_password_from_config_replaces_the_stored_one(repo, database_url, fast_hashing):
    from evgate.config import Config
    from evgate.management.app import create_management_app
    first = create_management_app(Config.from_env({}, database_url=database_url,
                                                  admin_password="one"), repository=repo)
    assert first.test_client().get(B + "/v4/apis", headers=basic("admin", "one")).status_code == 200
    second = create_management_app(Config.from_env({}, database_url=database_url,
                                                   admin_password="two"), repository=repo)
    client = second.test_client()
    assert client.get(B + "/v4/apis", headers=basic("admin", "one")).status_code == 401
    assert client.get(B + "/v4/apis", headers=basic("admin", "two")).status_code == 200


def test_generated_admin_password_is_printed_once_and_works(repo, database_url, fast_hashing,
                                                            capfd, caplog):
    from evgate.config import Config
    from evgate.management.app import create_management_app
    config = Config.from_env({}, database_url=database_url)
    app = create_management_app(config, repository=repo)
    err = capfd.readouterr().err
    password = err.split("'admin': ")[1].split()[0]
    assert app.test_client().get(B + "/v4/apis",
                                 headers=basic("admin", password)).status_code == 200
    assert password not in caplog.text  # never through logging
    create_management_app(config, repository=repo)
    assert "generated password" not in capfd.readouterr().err


def test_openapi_is_public(client):
    response = client.get("/management/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.")


# -- APIs ---------------------------------------------------------------------------------------
def test_api_crud_and_lifecycle(api, client):
    created = api.call("POST", B + "/v4/apis/", 201, json=api_definition())  # trailing slash
    api_id = created["id"]
    assert created["state"] == "STOPPED" and created["deployedAt"] is None
    assert [a["id"] for a in api.call("GET", B + "/v4/apis", 200)] == [api_id]
    assert api.call("GET", f"{B}/v4/apis/{api_id}", 200)["name"] == "orders"
    api.call("POST", f"{B}/v4/apis/{api_id}/?action=start", 204, data="stray body")
    assert api.call("GET", f"{B}/v4/apis/{api_id}", 200)["state"] == "STARTED"
    api.call("POST", f"{B}/v4/apis/{api_id}?action=STOP", 204)
    assert api.call("GET", f"{B}/v4/apis/{api_id}", 200)["state"] == "STOPPED"
    updated = api.call("PUT", f"{B}/v4/apis/{api_id}", 200,
                       json={**api_definition(name="renamed"), "id": api_id,
                             "deployedAt": 1669384948542, "state": "STARTED", "plans": []})
    assert updated["name"] == "renamed" and updated["state"] == "STOPPED"
    deployed = api.call("POST", f"{B}/v4/apis/{api_id}/deploy", 200,
                        json={"deploymentLabel": "v2"})
    assert deployed["deployedAt"]
    api.call("DELETE", f"{B}/v4/apis/{api_id}", 204)
    api.call("GET", f"{B}/v4/apis/{api_id}", 404)


def test_invalid_definition_lists_every_problem_by_path(api, client):
    bad = api_definition()
    bad["listeners"][0]["entrypoints"][0]["type"] = "nope"
    bad["endpointGroups"][0]["endpoints"][0]["configuration"]["topics"] = "not-a-list"
    body = api.call("POST", B + "/v4/apis", 400, json=bad)
    paths = {e["path"] for e in body["errors"]}
    assert "$.listeners[0].entrypoints[0].type" in paths
    assert "$.endpointGroups[0].endpoints[0].configuration.topics" in paths
    assert body["http_status"] == 400
    assert api.call("GET", B + "/v4/apis", 200) == []  # nothing half-written


def test_regexes_re2_cannot_run_are_400_naming_the_construct_and_path(api):
    """Lookaround, backreferences: refused when the definition is validated, not at run time."""
    bad = api_definition(path="/re2")
    bad["flows"] = [{"name": "f", "enabled": True, "selectors": [
        {"type": "condition", "condition": "{#request.path matches '/a(?=b)'}"}],
        "subscribe": [{"name": "only-y", "enabled": True, "policy": "message-filtering",
                       "configuration": {"filter": "{#message.content matches '(?<=x)y'}"}}]}]
    bad["listeners"][0]["cors"] = {"enabled": True, "allowOrigin": ["https://(a)\\1"]}
    body = api.call("POST", B + "/v4/apis", 400, json=bad)
    errors = {e["path"]: e["message"] for e in body["errors"]}
    assert "lookahead (?=...) is not supported" in errors["$.flows[0].selectors[0].condition"]
    assert "lookbehind (?<=...) is not supported" in \
        errors["$.flows[0].subscribe[0].configuration.filter"]
    assert "backreference \\1 is not supported" in \
        errors["$.listeners[0].cors.allowOrigin[0]"]
    assert api.call("GET", B + "/v4/apis", 200) == []


def test_unregistered_endpoint_type_names_the_path(api):
    bad = api_definition()
    bad["endpointGroups"][0]["type"] = "mqtt5"
    bad["endpointGroups"][0]["endpoints"][0]["type"] = "mqtt5"
    body = api.call("POST", B + "/v4/apis", 400, json=bad)
    assert any(e["path"] == "$.endpointGroups[0].type" for e in body["errors"])


def test_kafka_advanced_is_accepted_as_kafka(api):
    definition = api_definition(path="/adv")
    definition["endpointGroups"][0]["endpoints"][0]["type"] = "kafka-advanced"
    api.call("POST", B + "/v4/apis", 201, json=definition)


def test_duplicate_listener_path_is_400_naming_the_conflict(api):
    first = api.create_api()
    body = api.call("POST", B + "/v4/apis", 400, json=api_definition(name="other"))
    assert "/orders" in body["message"] and first["id"] in body["message"]
    assert body["technicalCode"] == "api.listener.path.conflict"
    assert len(api.call("GET", B + "/v4/apis", 200)) == 1


def test_invalid_embedded_plan_rejects_the_whole_api(api):
    definition = api_definition(plans=[{"name": "j", "security": {"type": "jwt"}}])
    body = api.call("POST", B + "/v4/apis", 400, json=definition)
    assert any(e["path"].startswith("$.plans[0].security.configuration") for e in body["errors"])
    assert api.call("GET", B + "/v4/apis", 200) == []


@pytest.mark.parametrize("method,path", [
    ("GET", "/v4/apis/nope"), ("PUT", "/v4/apis/nope"), ("DELETE", "/v4/apis/nope"),
    ("POST", "/v4/apis/nope?action=start"), ("POST", "/v4/apis/nope/deploy"),
    ("GET", "/v4/apis/nope/plans"), ("POST", "/v4/apis/nope/plans"),
    ("GET", "/v4/apis/nope/subscriptions"), ("GET", "/applications/nope"),
])
def test_unknown_ids_are_404(api, method, path):
    kwargs = {"json": api_definition()} if method in ("PUT",) or path.endswith("/plans") and \
        method == "POST" else {}
    body = api.call(method, B + path, 404, **kwargs)
    assert body["http_status"] == 404


def test_malformed_json_is_400_and_wrong_content_type_415(client):
    response = client.post(B + "/v4/apis", headers={**ADMIN, "Content-Type": "application/json"},
                           data="{not json")
    assert response.status_code == 400
    assert response.get_json()["technicalCode"] == "body.malformed"
    response = client.post(B + "/v4/apis", headers={**ADMIN, "Content-Type": "text/plain"},
                           data=json.dumps(api_definition()))
    assert response.status_code == 415
    response = client.post(B + "/v4/apis", headers=ADMIN)
    assert response.status_code == 400


def test_bad_action_is_400(api):
    api_id = api.create_api()["id"]
    assert api.call("POST", f"{B}/v4/apis/{api_id}?action=explode", 400)["technicalCode"] == \
        "api.action.invalid"


def test_unknown_path_and_method(client):
    assert client.get(B + "/nothing-here", headers=ADMIN).status_code == 404
    response = client.patch(B + "/v4/apis", headers=ADMIN)
    assert response.status_code == 405
    assert response.get_json()["http_status"] == 405


# -- plans --------------------------------------------------------------------------------------
def test_plan_lifecycle(api):
    api_id = api.create_api()["id"]
    plan = api.create_plan(api_id, publish=False, description="Keyless")
    assert plan["status"] == "staging" and plan["characteristics"] == []
    base = f"{B}/v4/apis/{api_id}/plans/{plan['id']}"
    assert api.call("GET", base, 200)["id"] == plan["id"]
    assert api.call("PUT", base, 200, json={"name": "renamed", "security": {"type": "key-less"}}
                    )["name"] == "renamed"
    assert api.call("POST", base + "/_publish", 200)["status"] == "published"
    assert api.call("POST", base + "/_publish", 400)["technicalCode"] == "plan.not.staging"
    assert api.call("POST", base + "/_deprecate", 200)["status"] == "deprecated"
    assert api.call("GET", f"{B}/v4/apis/{api_id}/plans?status=deprecated", 200)[0]["id"] == \
        plan["id"]
    api.call("DELETE", base, 400)  # not closed yet
    assert api.call("POST", base + "/_close", 200)["status"] == "closed"
    api.call("DELETE", base, 204)
    api.call("GET", base, 404)
    assert api.call("GET", f"{B}/v4/apis/{api_id}", 200)["plans"] == []


def test_plan_validation_errors(api):
    api_id = api.create_api()["id"]
    body = api.call("POST", f"{B}/v4/apis/{api_id}/plans", 400,
                    json={"name": "x", "security": {"type": "oauth2"}})
    assert body["errors"][0]["path"] == "$.security.type"
    body = api.call("POST", f"{B}/v4/apis/{api_id}/plans", 400,
                    json={"name": "x", "security": {"type": "jwt", "configuration": {
                        "signature": "RSA_RS256", "resolverParameter": "not a pem"}}})
    assert body["errors"][0]["path"] == "$.security.configuration.resolverParameter"


# -- applications -------------------------------------------------------------------------------
def test_application_crud(api):
    app = api.create_app(client_id="cid")
    assert app["settings"]["app"]["client_id"] == "cid"
    assert [a["id"] for a in api.call("GET", B + "/applications", 200)] == [app["id"]]
    updated = api.call("PUT", f"{B}/applications/{app['id']}", 200,
                       json={"name": "new", "settings": {}})
    assert updated["name"] == "new"
    assert api.call("GET", f"{B}/applications/{app['id']}/subscriptions", 200) == []
    api.call("POST", B + "/applications", 400, json={"description": "no name"})
    api.call("DELETE", f"{B}/applications/{app['id']}", 204)
    api.call("GET", f"{B}/applications/{app['id']}", 404)


# -- subscriptions ------------------------------------------------------------------------------
def test_push_subscription_workflow_like_the_collection(api):
    api_id = api.create_api(push_api_definition())["id"]
    plan = api.create_plan(api_id, "subscription")
    app = api.create_app()
    base = f"{B}/v4/apis/{api_id}/subscriptions"
    body = {"configuration": {"entrypointId": "webhook", "callbackUrl": "http://93.184.216.34:9/x",
                              "headers": [{"name": "h", "value": "v"}]},
            "metadata": {"feature": "demo"}}
    sub = api.call("POST", f"{base}?application={app['id']}&plan={plan['id']}", 201, json=body)
    assert sub["status"] == "ACCEPTED" and sub["metadata"] == {"feature": "demo"}
    assert sub["keys"] == []  # push plans issue no key
    assert api.call("GET", base, 200)[0]["id"] == sub["id"]
    assert api.call("GET", f"{base}?status=PENDING", 200) == []
    paused = api.call("POST", f"{base}/{sub['id']}/status?status=PAUSED", 200, data="{}")
    assert paused["status"] == "PAUSED"
    api.call("POST", f"{base}/{sub['id']}/status?status=PAUSED", 400)
    assert api.call("POST", f"{base}/{sub['id']}/status?status=RESUMED", 200)["status"] == \
        "ACCEPTED"
    api.call("POST", f"{base}/{sub['id']}/status?status=BOGUS", 400)
    updated = api.call("PUT", f"{base}/{sub['id']}", 200, json={"metadata": {"feature": "x"}})
    assert updated["metadata"] == {"feature": "x"}
    assert updated["configuration"]["entrypointId"] == "webhook"
    assert api.call("POST", f"{base}/{sub['id']}/_close", 200)["status"] == "CLOSED"
    api.call("POST", f"{base}/{sub['id']}/status?status=RESUMED", 400)


def test_subscription_without_entrypoint_is_400(api):
    api_id = api.create_api(push_api_definition())["id"]
    plan = api.create_plan(api_id, "subscription")
    app = api.create_app()
    body = api.call("POST", f"{B}/v4/apis/{api_id}/subscriptions?application={app['id']}"
                    f"&plan={plan['id']}", 400, json={"configuration": {"callbackUrl": "x"}})
    assert body["technicalCode"] == "subscription.entrypoint.missing"
    assert api.call("GET", f"{B}/v4/apis/{api_id}/subscriptions", 200) == []


def test_subscription_to_unknown_entrypoint_is_400(api):
    api_id = api.create_api(push_api_definition())["id"]
    plan = api.create_plan(api_id, "subscription")
    app = api.create_app()
    body = api.call("POST", f"{B}/v4/apis/{api_id}/subscriptions?application={app['id']}"
                    f"&plan={plan['id']}", 400, json={"configuration": {"entrypointId": "sse"}})
    assert body["technicalCode"] == "subscription.entrypoint.invalid"


def test_subscribing_to_keyless_or_unpublished_plans_is_400(api):
    api_id = api.create_api()["id"]
    keyless = api.create_plan(api_id, "key-less")
    staging = api.create_plan(api_id, "api-key", publish=False)
    app = api.create_app()
    url = f"{B}/v4/apis/{api_id}/subscriptions?application={app['id']}&plan="
    assert api.call("POST", url + keyless["id"], 400, json={})["technicalCode"] == \
        "plan.security.keyless"
    assert api.call("POST", url + staging["id"], 400, json={})["technicalCode"] == \
        "plan.not.published"
    api.call("POST", url + "nope", 404, json={})
    api.call("POST", f"{B}/v4/apis/{api_id}/subscriptions?plan={staging['id']}"
             "&application=nope", 404, json={})  # unknown ids first
    api.call("POST", f"{B}/v4/apis/{api_id}/subscriptions?plan={staging['id']}", 400, json={})


def test_api_key_plan_issues_a_key_and_close_revokes_it(api):
    api_id = api.create_api()["id"]
    plan = api.create_plan(api_id, "api-key")
    app = api.create_app()
    base = f"{B}/v4/apis/{api_id}/subscriptions"
    sub = api.call("POST", f"{base}?application={app['id']}&plan={plan['id']}", 201)
    assert sub["status"] == "ACCEPTED" and len(sub["keys"]) == 1
    assert not sub["keys"][0]["revoked"]
    api.call("POST", f"{base}?application={app['id']}&plan={plan['id']}", 400)  # duplicate
    closed = api.call("POST", f"{base}/{sub['id']}/status?status=CLOSED", 200)
    assert closed["keys"][0]["revoked"]


def test_manual_validation_pending_then_process(api):
    api_id = api.create_api()["id"]
    plan = api.create_plan(api_id, "api-key", validation="manual")
    app = api.create_app()
    base = f"{B}/v4/apis/{api_id}/subscriptions"
    sub = api.call("POST", f"{base}?application={app['id']}&plan={plan['id']}", 201)
    assert sub["status"] == "PENDING" and sub["keys"] == []
    api.call("POST", f"{base}/{sub['id']}/_process", 400, json={"accepted": "yes"})
    accepted = api.call("POST", f"{base}/{sub['id']}/_process", 200,
                        json={"accepted": True, "customApiKey": "my-custom-key-1"})
    assert accepted["status"] == "ACCEPTED"
    assert accepted["keys"][0]["key"] == "my-custom-key-1"
    # approving again is a no-op (the collection does it); rejecting now is refused
    assert api.call("POST", f"{base}/{sub['id']}/_process", 200,
                    json={"accepted": True})["status"] == "ACCEPTED"
    api.call("POST", f"{base}/{sub['id']}/_process", 400, json={"accepted": False})

    other = api.create_app("other")
    sub2 = api.call("POST", f"{base}?application={other['id']}&plan={plan['id']}", 201)
    rejected = api.call("POST", f"{base}/{sub2['id']}/_process", 200, json={"accepted": False})
    assert rejected["status"] == "REJECTED" and rejected["keys"] == []


def test_subscription_of_another_api_is_404(api):
    api_a = api.create_api()["id"]
    api_b = api.create_api(api_definition(path="/b", name="b"))["id"]
    plan = api.create_plan(api_a, "api-key")
    app = api.create_app()
    sub = api.call("POST", f"{B}/v4/apis/{api_a}/subscriptions?application={app['id']}"
                   f"&plan={plan['id']}", 201)
    api.call("GET", f"{B}/v4/apis/{api_b}/subscriptions/{sub['id']}", 404)
    api.call("POST", f"{B}/v4/apis/{api_b}/subscriptions?application={app['id']}"
             f"&plan={plan['id']}", 404)


def test_mark_failure_is_visible_and_resume_clears_it(api, repo):
    from evgate.services.subscriptions import SubscriptionService
    from evgate.services.principal import LOCAL_OPERATOR
    api_id = api.create_api(push_api_definition())["id"]
    plan = api.create_plan(api_id, "subscription")
    app = api.create_app()
    base = f"{B}/v4/apis/{api_id}/subscriptions"
    sub = api.call("POST", f"{base}?application={app['id']}&plan={plan['id']}", 201,
                   json={"configuration": {"entrypointId": "webhook",
                                           "callbackUrl": "http://93.184.216.34:9/"}})
    SubscriptionService(repo, LOCAL_OPERATOR).mark_failure(sub["id"],
                                                           "callback answered 500 five times")
    failed = api.call("GET", f"{base}/{sub['id']}", 200)
    assert failed["status"] == "FAILURE"
    assert failed["failureCause"] == "callback answered 500 five times"
    resumed = api.call("POST", f"{base}/{sub['id']}/status?status=RESUMED", 200)
    assert resumed["status"] == "ACCEPTED" and resumed["failureCause"] is None


def test_closing_a_plan_closes_its_subscriptions(api):
    api_id = api.create_api()["id"]
    plan = api.create_plan(api_id, "api-key")
    app = api.create_app()
    sub = api.call("POST", f"{B}/v4/apis/{api_id}/subscriptions?application={app['id']}"
                   f"&plan={plan['id']}", 201)
    api.call("POST", f"{B}/v4/apis/{api_id}/plans/{plan['id']}/_close", 200)
    closed = api.call("GET", f"{B}/v4/apis/{api_id}/subscriptions/{sub['id']}", 200)
    assert closed["status"] == "CLOSED" and closed["keys"][0]["revoked"]


# -- portal -------------------------------------------------------------------------------------
def test_portal_approval_workflow(api):
    api_id = api.create_api(push_api_definition())["id"]
    plan = api.create_plan(api_id, "subscription", validation="manual")
    app = api.call("POST", P + "/applications", 201,
                   json={"name": "application", "settings": {"app": {"type": "test"}}})
    assert api.call("GET", f"{P}/applications/{app['id']}", 200)["name"] == "application"
    config = {"entrypointId": "webhook", "callbackUrl": "http://93.184.216.34:9/a"}
    sub = api.call("POST", P + "/subscriptions", 201,
                   json={"application": app["id"], "plan": plan["id"], "configuration": config})
    assert sub["status"] == "PENDING"
    url = f"{B}/v4/apis/{api_id}/subscriptions/{sub['id']}"
    assert api.call("POST", url + "/_process", 200, json={"accepted": True})["status"] == \
        "ACCEPTED"
    changed = api.call("PUT", f"{P}/subscriptions/{sub['id']}", 200, json={"configuration": {
        **config, "headers": [{"name": "demoHeader", "value": "demoValue"}]}})
    assert changed["status"] == "PENDING"  # manual plan: the publisher approves the change
    assert api.call("POST", url + "/_process", 200, json={"accepted": True})["status"] == \
        "ACCEPTED"
    stopped = api.call("POST", f"{P}/subscriptions/{sub['id']}/_changeConsumerStatus"
                       "?status=STOPPED", 200, json={"configuration": config})
    assert stopped["consumerStatus"] == "STOPPED"
    api.call("POST", url + "/status?status=PAUSED", 200)
    api.call("POST", f"{P}/subscriptions/{sub['id']}/_changeConsumerStatus?status=STARTED", 200)
    api.call("POST", f"{P}/subscriptions/{sub['id']}/_changeConsumerStatus?status=NOPE", 400)
    final = api.call("POST", url + "/status?status=RESUMED", 200)
    assert (final["status"], final["consumerStatus"]) == ("ACCEPTED", "STARTED")
    assert [s["id"] for s in api.call("GET", f"{P}/subscriptions?api={api_id}", 200)] == \
        [sub["id"]]
    assert api.call("GET", f"{P}/subscriptions/{sub['id']}", 200)["id"] == sub["id"]


def test_portal_subscription_requires_a_body(api):
    api.call("POST", P + "/subscriptions", 400)


# -- users --------------------------------------------------------------------------------------
def test_users_endpoints(api, client):
    api.call("PUT", B + "/users/bob", 200, json={"password": "pw-bob"})
    users = {u["username"]: u["roles"] for u in api.call("GET", B + "/users", 200)}
    assert users == {"admin": ["ADMIN"], "bob": ["USER"]}
    api.call("PUT", B + "/users/bob", 400, json={"password": "x", "roles": ["ROOT"]})
    api.call("PUT", B + "/users/bob", 400, json={"roles": ["USER"]})
    assert client.get(B + "/v4/apis", headers=basic("bob", "pw-bob")).status_code == 200
