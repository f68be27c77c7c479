"""The management API v2 (Gravitee 4.x paths and shapes) over the shared services: shapes
round-trip, paging, error bodies, the subscription and API key lifecycles."""
from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone


from .management_fixtures import (ADMIN, B, P, Api, api, api_definition, basic, client,  # noqa: F401
                                  fast_hashing, management, push_api_definition)

V2 = "/management/v2/environments/DEFAULT"

#: A 4.x definition as Gravitee's 4.0 collection writes it, with the fields 4.x added.
SSE_V4 = {
    "name": "Event Consumption - SSE", "apiVersion": "1.0", "definitionVersion": "V4",
    "type": "MESSAGE", "description": "sse",
    "listeners": [{"type": "HTTP", "paths": [{"path": "/demo/sse/kafka"}], "entrypoints": [
        {"type": "sse", "qos": "AUTO", "dlq": {"endpoint": "dlq-group"},
         "configuration": {"heartbeatIntervalInMs": 5000, "metadataAsComment": False,
                           "headersAsComment": False}}]}],
    "endpointGroups": [{"name": "default-group", "type": "kafka",
                        "sharedConfiguration": {"consumer": {"enabled": True}},
                        "endpoints": [{"name": "default", "type": "kafka", "weight": 1,
                                       "inheritConfiguration": False,
                                       "configuration": {"bootstrapServers": "kafka:9092"},
                                       "sharedConfigurationOverride": {"consumer": {
                                           "enabled": True, "topics": ["demo"],
                                           "autoOffsetReset": "earliest"}}}]}],
    "analytics": {"enabled": True, "messageSampling": {"type": "COUNT", "value": "10"},
                  "logging": {"mode": {"entrypoint": True, "endpoint": True}}},
}


def _call(api: Api, method: str, path: str, expect: int, **kwargs):
    return api.call(method, V2 + path, expect, **kwargs)


def test_a_4x_definition_comes_back_as_sent_with_server_fields(api):
    created = _call(api, "POST", "/apis", 201, json=SSE_V4)
    got = _call(api, "GET", f"/apis/{created['id']}", 200)
    for key, value in SSE_V4.items():
        assert got[key] == value, key
    assert got["state"] == "STOPPED" and got["createdAt"] and "plans" not in got
    # the 3.20 path reads the same API
    assert api.call("GET", f"{B}/v4/apis/{created['id']}", 200)["analytics"] == \
        SSE_V4["analytics"]


def test_proxy_apis_are_a_clear_400_on_both_versions(api):
    body = {**copy.deepcopy(SSE_V4), "type": "PROXY"}
    error = _call(api, "POST", "/apis", 400, json=body)
    assert error["httpStatus"] == 400
    assert {"location": "$.type", "message": "PROXY (sync) APIs are not supported by evgate "
            "yet: only MESSAGE APIs run"} in error["details"]
    assert api.call("POST", B + "/v4/apis", 400, json=body)["errors"][0]["path"] == "$.type"


def test_v2_errors_name_every_problem_by_json_path(api):
    body = copy.deepcopy(SSE_V4)
    body["listeners"][0]["paths"][0]["path"] = "no-slash"
    body["listeners"][0]["entrypoints"][0]["qos"] = "SOMETIMES"
    error = _call(api, "POST", "/apis", 400, json=body)
    assert error["technicalCode"] == "api.definition.invalid"
    locations = {d["location"] for d in error["details"]}
    assert {"$.listeners[0].paths[0].path", "$.listeners[0].entrypoints[0].qos"} <= locations
    unknown = _call(api, "GET", "/apis/nope", 404)
    assert unknown == {"httpStatus": 404, "message": "Api [nope] can not be found",
                       "technicalCode": "api.notFound", "parameters": {"api": "nope"},
                       "details": []}
    assert _call(api, "POST", "/apis", 415, data="{}", content_type="text/plain")[
        "httpStatus"] == 415


def test_paging(api):
    for index in range(3):
        api.create_api(api_definition(path=f"/p{index}", name=f"paged-{index}"))
    page = _call(api, "GET", "/apis?perPage=2&page=2&q=paged", 200)
    assert page["pagination"] == {"page": 2, "perPage": 2, "pageCount": 2,
                                  "pageItemsCount": 1, "totalCount": 3}
    assert len(page["data"]) == 1
    assert "page=1" in page["links"]["previous"] and "next" not in page["links"]
    assert "q=paged" in page["links"]["first"]
    first = _call(api, "GET", "/apis?perPage=2&q=paged", 200)
    names = {a["name"] for a in first["data"] + page["data"]}
    assert names == {"paged-0", "paged-1", "paged-2"}
    assert _call(api, "GET", "/apis?q=nothing-like-it", 200)["pagination"]["totalCount"] == 0
    for bad in ("page=0", "perPage=abc", "perPage=1001"):
        error = _call(api, "GET", f"/apis?{bad}", 400)
        assert error["details"][0]["location"] == "$." + bad.split("=")[0]


def test_search(api):
    one = api.create_api(api_definition(path="/s1", name="alpha", tags=["t1"]))["id"]
    api.create_api(api_definition(path="/s2", name="beta"))
    found = _call(api, "POST", "/apis/_search", 200, json={"query": "ALPHA"})["data"]
    assert [a["id"] for a in found] == [one]
    assert [a["id"] for a in _call(api, "POST", "/apis/_search", 200,
                                   json={"tags": ["t1"]})["data"]] == [one]
    assert _call(api, "POST", "/apis/_search", 200,
                 json={"apiTypes": ["PROXY"]})["data"] == []


def test_push_plan_has_no_security_and_key_plans_speak_4x_names(api):
    api_id = api.create_api(push_api_definition())["id"]
    push = _call(api, "POST", f"/apis/{api_id}/plans", 201,
                 json={"definitionVersion": "V4", "name": "push", "mode": "PUSH"})
    assert push["mode"] == "PUSH" and "security" not in push and push["status"] == "STAGING"
    stored = api.call("GET", f"{B}/v4/apis/{api_id}/plans/{push['id']}", 200)
    assert stored["security"]["type"] == "subscription"
    key = _call(api, "POST", f"/apis/{api_id}/plans", 201,
                json={"name": "k", "mode": "STANDARD", "security": {"type": "API_KEY"},
                      "validation": "MANUAL"})
    assert key["security"]["type"] == "API_KEY" and key["validation"] == "MANUAL"
    published = _call(api, "POST", f"/apis/{api_id}/plans/{key['id']}/_publish", 200)
    assert published["status"] == "PUBLISHED"
    listed = _call(api, "GET", f"/apis/{api_id}/plans?mode=PUSH", 200)["data"]
    assert [p["id"] for p in listed] == [push["id"]]
    # an update without security keeps the plan's own
    renamed = _call(api, "PUT", f"/apis/{api_id}/plans/{key['id']}", 200, json={"name": "kk"})
    assert renamed["name"] == "kk" and renamed["security"]["type"] == "API_KEY"


def _push_subscription(api: Api, **consumer):
    api_id = api.create_api(push_api_definition())["id"]
    plan = _call(api, "POST", f"/apis/{api_id}/plans", 201, json={"name": "p", "mode": "PUSH"})
    _call(api, "POST", f"/apis/{api_id}/plans/{plan['id']}/_publish", 200)
    app = api.create_app()["id"]
    configuration = {"entrypointId": "webhook", "channel": "/channel1",
                     "entrypointConfiguration": {
                         "callbackUrl": "http://93.184.216.34:9/hook",
                         "headers": [{"name": "demoHeader", "value": "v"}], **consumer}}
    sub = _call(api, "POST", f"/apis/{api_id}/subscriptions", 201, json={
        "applicationId": app, "planId": plan["id"], "consumerConfiguration": configuration,
        "metadata": {"feature": "demo"}})
    return api_id, app, sub, configuration


def test_nested_consumer_configuration_round_trips_and_is_checked(api):
    api_id, app, sub, configuration = _push_subscription(api)
    assert sub["consumerConfiguration"] == configuration
    assert sub["application"] == {"id": app} and sub["status"] == "ACCEPTED"
    # what the webhook runtime and the 3.20 paths read: flat
    flat = api.call("GET", f"{P}/subscriptions/{sub['id']}", 200)["configuration"]
    assert flat["callbackUrl"] == "http://93.184.216.34:9/hook" and flat["channel"] == "/channel1"
    # the SSRF policy sees the nested callbackUrl
    bad = copy.deepcopy(configuration)
    bad["entrypointConfiguration"]["callbackUrl"] = "http://169.254.169.254/latest/meta-data"
    error = _call(api, "PUT", f"/apis/{api_id}/subscriptions/{sub['id']}", 400,
                  json={"consumerConfiguration": bad})
    # the problem is named where the v2 body has it, not where evgate stores it
    assert error["details"][0]["location"] == \
        "$.consumerConfiguration.entrypointConfiguration.callbackUrl", error
    assert error["message"].startswith(
        "$.consumerConfiguration.entrypointConfiguration.callbackUrl: "), error
    wrong = copy.deepcopy(configuration)
    wrong["entrypointConfiguration"]["entrypointId"] = "sse"
    error = _call(api, "PUT", f"/apis/{api_id}/subscriptions/{sub['id']}", 400,
                  json={"consumerConfiguration": wrong})
    assert error["details"][0]["location"] == \
        "$.consumerConfiguration.entrypointConfiguration.entrypointId"
    # the 3.20 path names the same problem in its own (flat `configuration`) shape
    flat_bad = {**flat, "callbackUrl": "http://169.254.169.254/latest/meta-data"}
    error = api.call("PUT", f"{P}/subscriptions/{sub['id']}", 400,
                     json={"configuration": flat_bad})
    assert error["message"].startswith("$.configuration.callbackUrl: "), error
    # the 4.0 portal body (nested under `configuration`) works on the portal path too
    portal = api.call("PUT", f"{P}/subscriptions/{sub['id']}", 200,
                      json={"configuration": configuration})
    assert portal["configuration"]["headers"] == [{"name": "demoHeader", "value": "v"}]


def test_a_failed_subscription_is_a_failed_consumer(api, repo):
    from evgate.management.resources import Services
    from evgate.services.principal import LOCAL_OPERATOR
    api_id, _app, sub, _ = _push_subscription(api)
    Services.for_repository(repo, LOCAL_OPERATOR).subscriptions.mark_failure(sub["id"], "gone")
    got = _call(api, "GET", f"/apis/{api_id}/subscriptions/{sub['id']}", 200)
    assert (got["status"], got["consumerStatus"], got["failureCause"]) == \
        ("ACCEPTED", "FAILURE", "gone")
    listed = _call(api, "GET", f"/apis/{api_id}/subscriptions?statuses=ACCEPTED", 200)["data"]
    assert [s["id"] for s in listed] == [sub["id"]]
    resumed = _call(api, "POST", f"/apis/{api_id}/subscriptions/{sub['id']}/_resume", 200)
    assert resumed["consumerStatus"] == "STARTED" and resumed["status"] == "ACCEPTED"


def test_accept_with_custom_key_then_revoke_reactivate_renew(api, repo):
    api_id = api.create_api()["id"]
    plan = _call(api, "POST", f"/apis/{api_id}/plans", 201, json={
        "name": "k", "security": {"type": "API_KEY"}, "validation": "MANUAL"})["id"]
    _call(api, "POST", f"/apis/{api_id}/plans/{plan}/_publish", 200)
    app = api.create_app()["id"]
    sub = _call(api, "POST", f"/apis/{api_id}/subscriptions", 201,
                json={"applicationId": app, "planId": plan})
    assert sub["status"] == "PENDING"
    base = f"/apis/{api_id}/subscriptions/{sub['id']}"
    accepted = _call(api, "POST", base + "/_accept", 200, json={
        "reason": "ok", "customApiKey": "my-custom-key-0001", "endingAt": "2099-01-01T00:00:00Z"})
    assert accepted["status"] == "ACCEPTED"
    keys = _call(api, "GET", base + "/api-keys", 200)["data"]
    assert [(k["key"], k["revoked"], k["expireAt"][:10]) for k in keys] == \
        [("my-custom-key-0001", False, "2099-01-01")]
    key_id = keys[0]["id"]
    assert "my-custom-key" not in key_id  # the id is the key's hash, not the key

    def usable():
        return {k["key_hash"] for k in repo.api_keys.list_usable()}
    assert key_id in usable()
    assert _call(api, "POST", f"{base}/api-keys/{key_id}/_revoke", 200)["revoked"] is True
    assert key_id not in usable()
    assert _call(api, "POST", f"{base}/api-keys/{key_id}/_reactivate", 200)["revoked"] is False
    assert key_id in usable()
    renewed = _call(api, "POST", base + "/api-keys/_renew", 201)
    assert renewed["key"] != "my-custom-key-0001" and usable() >= {renewed["id"]}
    # the previous key stays valid for the grace period (two hours by default), no longer
    keys = {k["id"]: k for k in _call(api, "GET", base + "/api-keys", 200)["data"]}
    old = keys[key_id]
    assert old["revoked"] is False and old["expired"] is False
    left = datetime.fromisoformat(old["expireAt"]) - datetime.now(timezone.utc)
    assert timedelta(hours=1, minutes=59) < left <= timedelta(hours=2), old
    assert keys[renewed["id"]]["expireAt"] is None
    assert _call(api, "GET", f"/apis/{api_id}/subscriptions?apiKey={renewed['key']}",
                 200)["pagination"]["totalCount"] == 1
    # reject only what is pending
    assert _call(api, "POST", base + "/_reject", 400)["technicalCode"] == \
        "subscription.not.pending"


def test_transfer_to_a_plan_with_the_same_security(api):
    api_id = api.create_api()["id"]
    first = api.create_plan(api_id, "api-key", name="one")["id"]
    second = api.create_plan(api_id, "api-key", name="two")["id"]
    free = api.create_plan(api_id, "key-less", name="free")["id"]
    app = api.create_app()["id"]
    sub = _call(api, "POST", f"/apis/{api_id}/subscriptions", 201,
                json={"applicationId": app, "planId": first})
    base = f"/apis/{api_id}/subscriptions/{sub['id']}"
    assert _call(api, "POST", base + "/_transfer", 200, json={"planId": second})["plan"] == \
        {"id": second}
    error = _call(api, "POST", base + "/_transfer", 400, json={"planId": free})
    assert error["details"][0]["location"] == "$.planId"
    assert _call(api, "POST", base + "/_transfer", 400,
                 json={"planId": second})["technicalCode"] == "subscription.transfer.same.plan"


def test_transfer_refuses_a_second_live_subscription_to_the_target_plan(api):
    """An application holds one live subscription per plan: a transfer onto a plan where it
    already has one is refused (400 subscription.exists, as a second subscribe is) and
    nothing moves."""
    api_id = api.create_api()["id"]
    first = api.create_plan(api_id, "api-key", name="one")["id"]
    second = api.create_plan(api_id, "api-key", name="two")["id"]
    app = api.create_app()["id"]
    on_first = _call(api, "POST", f"/apis/{api_id}/subscriptions", 201,
                     json={"applicationId": app, "planId": first})
    on_second = _call(api, "POST", f"/apis/{api_id}/subscriptions", 201,
                      json={"applicationId": app, "planId": second})
    base = f"/apis/{api_id}/subscriptions/{on_first['id']}"
    error = _call(api, "POST", base + "/_transfer", 400, json={"planId": second})
    assert error["technicalCode"] == "subscription.exists" and on_second["id"] in error["message"]
    assert _call(api, "GET", base, 200)["plan"] == {"id": first}
    # once the other is closed the transfer goes through
    _call(api, "POST", f"/apis/{api_id}/subscriptions/{on_second['id']}/_close", 200)
    assert _call(api, "POST", base + "/_transfer", 200, json={"planId": second})["plan"] == \
        {"id": second}


def test_export_then_import_recreates_the_api_and_its_plans(api):
    created = _call(api, "POST", "/apis", 201, json=SSE_V4)["id"]
    plan = _call(api, "POST", f"/apis/{created}/plans", 201,
                 json={"name": "free", "security": {"type": "KEY_LESS"}})["id"]
    _call(api, "POST", f"/apis/{created}/plans/{plan}/_publish", 200)
    exported = _call(api, "GET", f"/apis/{created}/_export/definition", 200)
    _call(api, "DELETE", f"/apis/{created}", 204)
    imported = _call(api, "POST", "/apis/_import/definition", 201, json=exported)
    assert imported["id"] == created
    for key in SSE_V4:
        assert imported[key] == SSE_V4[key], key
    plans = _call(api, "GET", f"/apis/{created}/plans", 200)["data"]
    assert [(p["id"], p["status"], p["security"]["type"]) for p in plans] == \
        [(plan, "PUBLISHED", "KEY_LESS")]


def test_deployments_and_start_stop(api):
    api_id = api.create_api()["id"]
    assert _call(api, "GET", f"/apis/{api_id}/deployments/current", 404)["httpStatus"] == 404
    deployed = _call(api, "POST", f"/apis/{api_id}/deployments", 202,
                     json={"deploymentLabel": "first"})
    assert deployed["deploymentLabel"] == "first"
    assert _call(api, "GET", f"/apis/{api_id}/deployments/current", 200) == deployed
    _call(api, "POST", f"/apis/{api_id}/_start", 204)
    assert _call(api, "GET", f"/apis/{api_id}", 200)["state"] == "STARTED"
    _call(api, "POST", f"/apis/{api_id}/_stop", 204)
    assert _call(api, "GET", f"/apis/{api_id}", 200)["state"] == "STOPPED"


def test_plugin_catalogue_lists_the_registry(client):
    from evgate import plugins
    for kind in ("entrypoints", "endpoints", "policies"):
        for prefix in ("/management/v2", "/management/v2/organizations/DEFAULT", V2):
            listed = client.get(f"{prefix}/plugins/{kind}", headers=ADMIN).get_json()
            assert [p["id"] for p in listed] == plugins.known(kind)
    schema = client.get("/management/v2/plugins/entrypoints/sse/schema", headers=ADMIN)
    assert schema.status_code == 200 and schema.get_json()["type"] == "object"
    assert client.get("/management/v2/plugins/entrypoints/nope/schema",
                      headers=ADMIN).status_code == 404
    assert client.get("/management/v2/plugins/entrypoints",
                      headers=basic("admin", "wrong")).get_json()["httpStatus"] == 401


def test_configuration_schema_comes_from_a_plugins_model():
    """A plugin that declares a pydantic configuration model publishes its schema."""
    from pydantic import BaseModel

    from evgate import plugins

    class Config(BaseModel):
        heartbeatIntervalInMs: int = 5000

    cls = plugins.load("entrypoints", "sse")
    try:
        cls.configuration_model = Config
        schema = plugins.configuration_schema("entrypoints", "sse")
    finally:
        del cls.configuration_model
    assert schema["properties"]["heartbeatIntervalInMs"]["default"] == 5000


def test_renew_with_no_grace_revokes_and_a_sooner_expiry_is_kept(api, repo):
    """EVGATE_API_KEY_RENEW_GRACE_S=0: the previous keys are revoked in the renewal's
    transaction. With a grace, a key that already expires sooner keeps its own date."""
    from evgate.repository._rows import now
    from evgate.services.principal import LOCAL_OPERATOR
    from evgate.services.subscriptions import SubscriptionService
    api_id = api.create_api()["id"]
    plan = api.create_plan(api_id, "api-key")["id"]
    sub = _call(api, "POST", f"/apis/{api_id}/subscriptions", 201,
                json={"applicationId": api.create_app()["id"], "planId": plan})
    first = repo.api_keys.for_subscription(sub["id"])[0]["key_hash"]
    soon = now() + timedelta(minutes=10)
    repo.api_keys.insert("a-key-that-ends-soon", subscription_id=sub["id"],
                         application_id=sub["application"]["id"], api_id=api_id,
                         expire_at=soon)
    SubscriptionService(repo, LOCAL_OPERATOR, renew_grace_s=7200).renew_key(api_id, sub["id"])
    keys = {k["key"]: k for k in repo.api_keys.for_subscription(sub["id"])}
    ends = keys["a-key-that-ends-soon"]["expire_at"].replace(tzinfo=timezone.utc)
    assert abs(ends - soon) < timedelta(seconds=1)
    renewed = SubscriptionService(repo, LOCAL_OPERATOR, renew_grace_s=0).renew_key(
        api_id, sub["id"])
    usable = {k["key_hash"] for k in repo.api_keys.list_usable()}
    assert renewed["id"] in usable and first not in usable
    assert [k["key"] for k in repo.api_keys.for_subscription(sub["id"])
            if not k["revoked"]] == [renewed["key"]]


def test_stored_configuration_paths_map_to_their_v2_places():
    from evgate.definition.v4x import consumer_configuration_location_v2 as where
    assert where("$.configuration") == "$.consumerConfiguration"
    assert where("$.configuration.entrypointId") == "$.consumerConfiguration.entrypointId"
    assert where("$.configuration.channel") == "$.consumerConfiguration.channel"
    assert where("$.configuration.headers[0].value") == \
        "$.consumerConfiguration.entrypointConfiguration.headers[0].value"
    assert where("$.configuration.entrypointConfiguration") == \
        "$.consumerConfiguration.entrypointConfiguration"
    for unchanged in ("$.metadata.x", "$.planId", "$.configurationX", "name"):
        assert where(unchanged) == unchanged


def test_null_plans_in_a_definition_mean_no_plans_on_both_versions(api):
    """`"plans": null` is read as no plans (as the definition model reads it), never a 500;
    a non-list is a 400 naming $.plans."""
    created = api.call("POST", B + "/v4/apis", 201, json={**api_definition(), "plans": None})
    assert api.call("GET", f"{B}/v4/apis/{created['id']}/plans", 200) == []
    body = {**copy.deepcopy(SSE_V4), "plans": None}
    created = _call(api, "POST", "/apis", 201, json=body)
    assert _call(api, "GET", f"/apis/{created['id']}/plans", 200)["data"] == []
    error = api.call("POST", B + "/v4/apis", 400,
                     json={**api_definition(), "plans": "free", "name": "other"})
    assert any(e["path"].startswith("$.plans") for e in error["errors"]), error


def test_verify_paths_says_whether_a_listener_path_is_free(api):
    taken = api.create_api(api_definition(path="/taken", name="taken"))["id"]

    def verify(*paths, api_id=None):
        body = {"paths": [{"path": p} for p in paths]}
        if api_id:
            body["apiId"] = api_id
        return _call(api, "POST", "/apis/_verify/paths", 200, json=body)
    assert verify("/free", "/free/two") == {"ok": True}
    assert verify("/taken/") == {"ok": False, "reason": "Path [/taken] already exists"}
    assert verify("/taken", api_id=taken) == {"ok": True}    # the API being edited
    assert verify("no-slash") == {"ok": False,
                                  "reason": "Path [no-slash] is invalid: must start with '/'"}
    assert verify("/a", "/a/") == {"ok": False, "reason": "Path [/a] is duplicated"}
    error = _call(api, "POST", "/apis/_verify/paths", 400, json={"paths": [{"host": "x"}]})
    assert error["details"][0]["location"] == "$.paths[0].path"


def test_verify_a_custom_api_key_before_subscribing(api):
    api_id = api.create_api()["id"]
    plan = api.create_plan(api_id, "api-key")["id"]
    app = api.create_app()["id"]
    verify = f"/apis/{api_id}/subscriptions/_verify"
    assert _call(api, "POST", verify, 200, json={"applicationId": app,
                                                 "apiKey": "my-custom-key-0001"}) == {"ok": True}
    _call(api, "POST", f"/apis/{api_id}/subscriptions", 201, json={
        "applicationId": app, "planId": plan, "customApiKey": "my-custom-key-0001"})
    answer = _call(api, "POST", verify, 200, json={"applicationId": app,
                                                   "apiKey": "my-custom-key-0001"})
    assert answer["ok"] is False and "already in use" in answer["reason"]
    assert _call(api, "POST", verify, 404, json={"applicationId": "nope",
                                                 "apiKey": "my-custom-key-0002"})


def test_update_an_api_key_expiry(api, repo):
    api_id = api.create_api()["id"]
    plan = api.create_plan(api_id, "api-key")["id"]
    app = api.create_app()["id"]
    sub = _call(api, "POST", f"/apis/{api_id}/subscriptions", 201,
                json={"applicationId": app, "planId": plan})
    base = f"/apis/{api_id}/subscriptions/{sub['id']}/api-keys"
    [key] = _call(api, "GET", base, 200)["data"]
    assert key["expireAt"] is None
    updated = _call(api, "PUT", f"{base}/{key['id']}", 200,
                    json={"expireAt": "2099-01-01T00:00:00Z"})
    assert updated["expireAt"].startswith("2099-01-01") and updated["expired"] is False
    [usable] = [k for k in repo.api_keys.list_usable() if k["key_hash"] == key["id"]]
    assert usable["expire_at"].year == 2099            # what the gateways read on sync
    assert _call(api, "PUT", f"{base}/{key['id']}", 200, json={})["expireAt"] is None
    error = _call(api, "PUT", f"{base}/{key['id']}", 400, json={"expireAt": "2001-01-01T00:00Z"})
    assert error["details"][0]["location"] == "$.expireAt"
    _call(api, "POST", f"{base}/{key['id']}/_revoke", 200)
    assert _call(api, "PUT", f"{base}/{key['id']}", 400, json={
        "expireAt": "2099-01-01T00:00:00Z"})["technicalCode"] == "apikey.revoked"


def test_subscribers_are_the_applications_with_a_live_subscription(api):
    api_id = api.create_api()["id"]
    plan = api.create_plan(api_id, "api-key")["id"]
    apps = {name: api.create_app(name)["id"] for name in ("billing", "reports", "gone")}
    subs = {name: _call(api, "POST", f"/apis/{api_id}/subscriptions", 201, json={
        "applicationId": app, "planId": plan})["id"] for name, app in apps.items()}
    _call(api, "POST", f"/apis/{api_id}/subscriptions/{subs['gone']}/_close", 200)
    page = _call(api, "GET", f"/apis/{api_id}/subscribers", 200)
    assert [a["name"] for a in page["data"]] == ["billing", "reports"]
    assert page["data"][0]["id"] == apps["billing"]
    assert page["data"][0]["primaryOwner"] == {"id": "admin", "displayName": "admin",
                                               "type": "USER"}
    assert [a["name"] for a in _call(api, "GET", f"/apis/{api_id}/subscribers?name=REP",
                                     200)["data"]] == ["reports"]
