"""Permission matrix: role x resource x action x owner/non-owner -> expected outcome.

Two USERs, alice and bob, each own an application with an api-key subscription (it carries a
key) and a webhook subscription (it carries a callback URL). Every case acts on ALICE's
resources as one of: `admin` (ADMIN), `owner` (alice), `other` (bob, a USER who owns nothing of
it). Over HTTP (management v1 and portal paths, real Flask app) and over the service layer
the CLI uses. A USER asking for what it may not see gets 404, never 403 (ids cannot be
probed); publisher-side writes by a USER are 403 whatever the id. The mAPI v2 paths
(`/management/v2/...`) go through the same services and are held to the same table.
"""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from evgate.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError

from .management_fixtures import (ADMIN, Api, B, P, api, api_definition, basic, client,  # noqa: F401
                                  fast_hashing, management, push_api_definition)

JWT_SECRET = "jwt-hmac-secret-that-only-the-publisher-knows-0123456789"
ALICE_KEY = "alice-private-api-key-0001"
ALICE_CALLBACK = "http://93.184.216.34:9/alice-private-callback"
BOB_KEY = "bob-private-api-key-0001"
BOB_CALLBACK = "http://93.184.216.34:9/bob-private-callback"
USERS = {"admin": ADMIN, "owner": basic("alice", "pw-alice"), "other": basic("bob", "pw-bob")}


@dataclass
class World:
    api: str
    push_api: str
    key_plan: str
    key_plan2: str
    jwt_plan: str
    staging: str
    push_plan: str
    apps: dict[str, str]        # owner name -> application id
    key_subs: dict[str, str]    # owner name -> api-key subscription id
    hook_subs: dict[str, str]   # owner name -> webhook subscription id

    def ids(self) -> dict[str, str]:
        """Placeholders of the paths below: ALICE's resources."""
        return {"api": self.api, "push_api": self.push_api, "key_plan": self.key_plan,
                "key_plan2": self.key_plan2, "staging": self.staging,
                "jwt_plan": self.jwt_plan, "app": self.apps["alice"], "push_plan": self.push_plan,
                "key_sub": self.key_subs["alice"], "hook_sub": self.hook_subs["alice"],
                "key_id": hashlib.sha256(ALICE_KEY.encode()).hexdigest()}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The world is built once per module in a template database; each test gets a copy."""
    from evgate.config import Config
    from evgate.management.app import create_management_app
    from evgate.repository import open_repository
    import evgate.security.passwords as passwords
    path = tmp_path_factory.mktemp("permissions") / "template.db"
    url = f"sqlite:///{path}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "N", 2 ** 10)
        patch.setattr(passwords, "P", 1)
        repo = open_repository(url)
        try:
            app = create_management_app(Config.from_env({}, database_url=url,
                                                        admin_password="admin-secret"),
                                        repository=repo)
            built = _build_world(Api(app.test_client()))
        finally:
            repo.dispose()
    return path, built


@pytest.fixture
def database_url(template, tmp_path) -> str:
    source, _ = template
    target = tmp_path / "evgate.db"
    # The database's secrets are sealed with the key file beside it: copy it too.
    for suffix in ("", "-wal", "-shm", ".secrets-key"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    return f"sqlite:///{target}"


@pytest.fixture
def world(template, management) -> World:
    return template[1]


def _build_world(api: Api) -> World:
    for name in ("alice", "bob"):
        api.call("PUT", f"{B}/users/{name}", 200, json={"password": f"pw-{name}",
                                                        "roles": ["USER"]})
    api_id = api.create_api()["id"]
    key_plan = api.create_plan(api_id, "api-key")["id"]
    key_plan2 = api.create_plan(api_id, "api-key", name="second")["id"]
    jwt_plan = api.call("POST", f"{B}/v4/apis/{api_id}/plans", 201, json={
        "name": "jwt", "security": {"type": "jwt", "configuration": {
            "signature": "HMAC_HS256", "publicKeyResolver": "GIVEN_KEY",
            "resolverParameter": JWT_SECRET}}})["id"]
    api.call("POST", f"{B}/v4/apis/{api_id}/plans/{jwt_plan}/_publish", 200)
    staging = api.create_plan(api_id, "api-key", publish=False, name="draft")["id"]
    push_api = api.create_api(push_api_definition())["id"]
    push_plan = api.create_plan(push_api, "subscription")["id"]
    apps, key_subs, hook_subs = {}, {}, {}
    for name, key, callback in (("alice", ALICE_KEY, ALICE_CALLBACK),
                                ("bob", BOB_KEY, BOB_CALLBACK)):
        creds = basic(name, f"pw-{name}")
        app = api.call("POST", P + "/applications", 201, headers=creds, json={"name": name})
        assert app["owner"] == name
        apps[name] = app["id"]
        key_subs[name] = api.call("POST", P + "/subscriptions", 201, headers=creds, json={
            "application": app["id"], "plan": key_plan})["id"]
        _set_key(api, api_id, key_subs[name], key)
        hook_subs[name] = api.call("POST", P + "/subscriptions", 201, headers=creds, json={
            "application": app["id"], "plan": push_plan,
            "configuration": {"entrypointId": "webhook", "callbackUrl": callback}})["id"]
    return World(api_id, push_api, key_plan, key_plan2, jwt_plan, staging, push_plan, apps,
                 key_subs, hook_subs)


def _set_key(api: Api, api_id: str, sub_id: str, key: str) -> None:
    """Give a subscription a known key, so that a leak can be searched for in responses."""
    repo = api.client.application.extensions["evgate.repository"]
    with repo.write() as conn:
        repo.api_keys.revoke_for_subscription(sub_id, conn)
        app_id = repo.subscriptions.get(sub_id)["application_id"]
        repo.api_keys.insert(key, subscription_id=sub_id, application_id=app_id, api_id=api_id,
                             conn=conn)


HOOK_CONFIG = {"configuration": {"entrypointId": "webhook",
                                 "callbackUrl": "http://93.184.216.34:9/attacker"}}
MS = B + "/v4/apis/{api}/subscriptions"
MH = B + "/v4/apis/{push_api}/subscriptions"

#: action -> (method, path, json body, {caller: expected status}). Callers act on alice's things.
HTTP_MATRIX: dict[str, tuple[str, str, Any, dict[str, int]]] = {
    # portal: applications
    "portal get application": ("GET", P + "/applications/{app}", None,
                               {"admin": 200, "owner": 200, "other": 404}),
    # portal: subscriptions
    "portal get webhook subscription": ("GET", P + "/subscriptions/{hook_sub}", None,
                                        {"admin": 200, "owner": 200, "other": 404}),
    "portal get api-key subscription": ("GET", P + "/subscriptions/{key_sub}", None,
                                        {"admin": 200, "owner": 200, "other": 404}),
    "portal redirect callbackUrl": ("PUT", P + "/subscriptions/{hook_sub}", HOOK_CONFIG,
                                    {"admin": 200, "owner": 200, "other": 404}),
    "portal stop consumer": ("POST", P + "/subscriptions/{hook_sub}/_changeConsumerStatus"
                                         "?status=STOPPED", None,
                             {"admin": 200, "owner": 200, "other": 404}),
    "portal bad consumer status": ("POST", P + "/subscriptions/{hook_sub}/_changeConsumerStatus"
                                              "?status=NOPE", None,
                                   {"admin": 400, "owner": 400, "other": 404}),
    "portal subscribe application": ("POST", P + "/subscriptions",
                                     {"application": "{app}", "plan": "{key_plan2}"},
                                     {"admin": 201, "owner": 201, "other": 404}),
    "portal subscribe to a draft plan": ("POST", P + "/subscriptions",
                                         {"application": "{app}", "plan": "{staging}"},
                                         {"admin": 400, "owner": 404, "other": 404}),
    # management: applications
    "mgmt get application": ("GET", B + "/applications/{app}", None,
                             {"admin": 200, "owner": 200, "other": 404}),
    "mgmt application subscriptions": ("GET", B + "/applications/{app}/subscriptions", None,
                                       {"admin": 200, "owner": 200, "other": 404}),
    "mgmt update application": ("PUT", B + "/applications/{app}", {"name": "renamed"},
                                {"admin": 200, "owner": 403, "other": 403}),
    "mgmt delete application": ("DELETE", B + "/applications/{app}", None,
                                {"admin": 400, "owner": 403, "other": 403}),  # open subs
    # management: subscriptions
    "mgmt get webhook subscription": ("GET", MH + "/{hook_sub}", None,
                                      {"admin": 200, "owner": 200, "other": 404}),
    "mgmt get api-key subscription": ("GET", MS + "/{key_sub}", None,
                                      {"admin": 200, "owner": 200, "other": 404}),
    "mgmt update subscription": ("PUT", MH + "/{hook_sub}", HOOK_CONFIG,
                                 {"admin": 200, "owner": 403, "other": 403}),
    "mgmt pause subscription": ("POST", MH + "/{hook_sub}/status?status=PAUSED", None,
                                {"admin": 200, "owner": 403, "other": 403}),
    "mgmt close subscription": ("POST", MS + "/{key_sub}/_close", None,
                                {"admin": 200, "owner": 403, "other": 403}),
    "mgmt process subscription": ("POST", MS + "/{key_sub}/_process", {"accepted": True},
                                  {"admin": 200, "owner": 403, "other": 403}),
    "mgmt accept subscription": ("POST", MS + "/{key_sub}/_accept", {"reason": "mine"},
                                 {"admin": 200, "owner": 403, "other": 403}),
    "mgmt reject subscription": ("POST", MS + "/{key_sub}/_reject", {"reason": "mine"},
                                 {"admin": 400, "owner": 403, "other": 403}),  # not PENDING
    "mgmt subscribe application": ("POST", MS + "?application={app}&plan={key_plan2}", None,
                                   {"admin": 201, "owner": 403, "other": 403}),
    # management: the catalogue (APIs and published plans are public to USERs)
    "mgmt get api": ("GET", B + "/v4/apis/{api}", None,
                     {"admin": 200, "owner": 200, "other": 200}),
    "mgmt get published plan": ("GET", B + "/v4/apis/{api}/plans/{key_plan}", None,
                                {"admin": 200, "owner": 200, "other": 200}),
    "mgmt get draft plan": ("GET", B + "/v4/apis/{api}/plans/{staging}", None,
                            {"admin": 200, "owner": 404, "other": 404}),
    "mgmt publish plan": ("POST", B + "/v4/apis/{api}/plans/{staging}/_publish", None,
                          {"admin": 200, "owner": 403, "other": 403}),
    "mgmt stop api": ("POST", B + "/v4/apis/{api}?action=STOP", None,
                      {"admin": 204, "owner": 403, "other": 403}),
    "mgmt list users": ("GET", B + "/users", None, {"admin": 200, "owner": 403, "other": 403}),
}

V2 = "/management/v2/environments/DEFAULT"
V2O = "/management/v2/organizations/DEFAULT/environments/DEFAULT"
READ = {"admin": 200, "owner": 200, "other": 200}
OWNED = {"admin": 200, "owner": 200, "other": 404}


def _publisher(status: int) -> dict[str, int]:
    """A publisher-side write: the ADMIN gets `status`, any USER 403 whatever it owns."""
    return {"admin": status, "owner": 403, "other": 403}


V2_HOOK = {"consumerConfiguration": {"entrypointId": "webhook", "entrypointConfiguration": {
    "callbackUrl": "http://93.184.216.34:9/attacker"}}}
HTTP_MATRIX.update({
    # v2: APIs
    "v2 list apis": ("GET", V2 + "/apis", None, READ),
    "v2 list apis bad page": ("GET", V2 + "/apis?page=0", None,
                              {"admin": 400, "owner": 400, "other": 400}),
    "v2 search apis": ("POST", V2 + "/apis/_search", {"query": "orders"}, READ),
    "v2 search apis bad filter": ("POST", V2 + "/apis/_search", {"ids": "{api}"},
                                  {"admin": 400, "owner": 400, "other": 400}),
    "v2 get api": ("GET", V2 + "/apis/{api}", None, READ),
    "v2 get api other environment": ("GET", "/management/v2/environments/PROD/apis/{api}",
                                     None, {"admin": 404, "owner": 404, "other": 404}),
    "v2 create api": ("POST", V2 + "/apis", api_definition(path="/v2-new", name="v2"),
                      _publisher(201)),
    "v2 create proxy api": ("POST", V2 + "/apis", api_definition(path="/v2-proxy", type="PROXY"),
                            _publisher(400)),
    "v2 update api": ("PUT", V2 + "/apis/{api}", api_definition(), _publisher(200)),
    "v2 update api bad listener": ("PUT", V2 + "/apis/{api}",
                                   api_definition(listeners=[{"type": "HTTP", "paths": [
                                       {"path": "no-slash"}], "entrypoints": [
                                       {"type": "http-post"}]}]), _publisher(400)),
    "v2 delete api": ("DELETE", V2 + "/apis/{api}", None, _publisher(204)),
    "v2 start api": ("POST", V2 + "/apis/{api}/_start", None, _publisher(204)),
    "v2 stop api": ("POST", V2 + "/apis/{api}/_stop", None, _publisher(204)),
    "v2 deploy api": ("POST", V2 + "/apis/{api}/deployments", {"deploymentLabel": "v2"},
                      _publisher(202)),
    "v2 deploy api bad label": ("POST", V2 + "/apis/{api}/deployments", {"deploymentLabel": 1},
                                _publisher(400)),
    "v2 current deployment (none)": ("GET", V2 + "/apis/{api}/deployments/current", None,
                                     {"admin": 404, "owner": 404, "other": 404}),
    "v2 export api": ("GET", V2 + "/apis/{api}/_export/definition", None, READ),
    "v2 import api": ("POST", V2 + "/apis/_import/definition",
                      {"api": api_definition(path="/v2-imported", name="imported"),
                       "plans": [{"name": "k", "mode": "STANDARD",
                                  "security": {"type": "KEY_LESS"}}]}, _publisher(201)),
    "v2 import api bad plan": ("POST", V2 + "/apis/_import/definition",
                               {"api": api_definition(path="/v2-imp2"),
                                "plans": [{"name": "k", "mode": "PULL"}]}, _publisher(400)),
    # v2: plans
    "v2 list plans": ("GET", V2 + "/apis/{api}/plans", None, READ),
    "v2 get published plan": ("GET", V2 + "/apis/{api}/plans/{key_plan}", None, READ),
    "v2 get draft plan": ("GET", V2 + "/apis/{api}/plans/{staging}", None,
                          {"admin": 200, "owner": 404, "other": 404}),
    "v2 create plan": ("POST", V2 + "/apis/{api}/plans", {"name": "p", "mode": "STANDARD",
                                                         "security": {"type": "API_KEY"}},
                       _publisher(201)),
    "v2 create push plan": ("POST", V2 + "/apis/{push_api}/plans", {"name": "p", "mode": "PUSH"},
                            _publisher(201)),
    "v2 create plan bad mode": ("POST", V2 + "/apis/{api}/plans", {"name": "p", "mode": "PULL"},
                                _publisher(400)),
    "v2 update plan": ("PUT", V2 + "/apis/{api}/plans/{staging}", {"name": "renamed"},
                       _publisher(200)),
    "v2 publish plan": ("POST", V2 + "/apis/{api}/plans/{staging}/_publish", None,
                        _publisher(200)),
    "v2 deprecate plan": ("POST", V2 + "/apis/{api}/plans/{key_plan2}/_deprecate", None,
                          _publisher(200)),
    "v2 close plan": ("POST", V2 + "/apis/{api}/plans/{key_plan2}/_close", None,
                      _publisher(200)),
    "v2 delete plan": ("DELETE", V2 + "/apis/{api}/plans/{staging}", None, _publisher(204)),
    "v2 delete published plan": ("DELETE", V2 + "/apis/{api}/plans/{key_plan}", None,
                                 _publisher(400)),
    # v2: subscriptions
    "v2 get webhook subscription": ("GET", V2 + "/apis/{push_api}/subscriptions/{hook_sub}",
                                    None, OWNED),
    "v2 org get webhook subscription": ("GET",
                                        V2O + "/apis/{push_api}/subscriptions/{hook_sub}",
                                        None, OWNED),
    "v2 get subscription under another api": ("GET", V2 + "/apis/{api}/subscriptions/{hook_sub}",
                                              None, {"admin": 404, "owner": 404, "other": 404}),
    "v2 subscribe application": ("POST", V2 + "/apis/{api}/subscriptions",
                                 {"applicationId": "{app}", "planId": "{key_plan2}"},
                                 _publisher(201)),
    "v2 subscribe bad body": ("POST", V2 + "/apis/{api}/subscriptions",
                              {"applicationId": 5, "planId": "{key_plan2}"}, _publisher(400)),
    "v2 subscribe webhook to a private address": (
        "POST", V2 + "/apis/{push_api}/subscriptions",
        {"applicationId": "{app}", "planId": "{push_plan}", "consumerConfiguration": {
            "entrypointId": "webhook",
            "entrypointConfiguration": {"callbackUrl": "http://169.254.169.254/latest"}}},
        _publisher(400)),
    "v2 update subscription": ("PUT", V2 + "/apis/{push_api}/subscriptions/{hook_sub}",
                               V2_HOOK, _publisher(200)),
    "v2 accept subscription": ("POST", V2 + "/apis/{api}/subscriptions/{key_sub}/_accept",
                               {"reason": "ok"}, _publisher(200)),
    "v2 accept bad date": ("POST", V2 + "/apis/{api}/subscriptions/{key_sub}/_accept",
                           {"endingAt": "tomorrow"}, _publisher(400)),
    "v2 reject accepted subscription": ("POST",
                                        V2 + "/apis/{api}/subscriptions/{key_sub}/_reject",
                                        None, _publisher(400)),
    "v2 pause subscription": ("POST", V2 + "/apis/{push_api}/subscriptions/{hook_sub}/_pause",
                              None, _publisher(200)),
    "v2 resume an active subscription": ("POST", V2 + "/apis/{push_api}/subscriptions/"
                                                      "{hook_sub}/_resume", None,
                                         _publisher(400)),
    "v2 close subscription": ("POST", V2 + "/apis/{api}/subscriptions/{key_sub}/_close", None,
                              _publisher(200)),
    "v2 transfer subscription": ("POST", V2 + "/apis/{api}/subscriptions/{key_sub}/_transfer",
                                 {"planId": "{key_plan2}"}, _publisher(200)),
    "v2 transfer to another security": ("POST", V2 + "/apis/{api}/subscriptions/{key_sub}/"
                                                     "_transfer", {"planId": "{jwt_plan}"},
                                        _publisher(400)),
    "v2 transfer without plan": ("POST", V2 + "/apis/{api}/subscriptions/{key_sub}/_transfer",
                                 {}, _publisher(400)),
    # v2: API keys
    "v2 list api keys": ("GET", V2 + "/apis/{api}/subscriptions/{key_sub}/api-keys", None,
                         OWNED),
    "v2 renew api key": ("POST", V2 + "/apis/{api}/subscriptions/{key_sub}/api-keys/_renew",
                         None, _publisher(201)),
    "v2 renew with a too short custom key": ("POST", V2 + "/apis/{api}/subscriptions/{key_sub}/"
                                                    "api-keys/_renew", {"customApiKey": "x"},
                                       _publisher(400)),
    "v2 revoke api key": ("POST", V2 + "/apis/{api}/subscriptions/{key_sub}/api-keys/{key_id}"
                                       "/_revoke", None, _publisher(200)),
    "v2 revoke unknown api key": ("POST", V2 + "/apis/{api}/subscriptions/{key_sub}/api-keys/"
                                               "nope/_revoke", None, _publisher(404)),
    "v2 reactivate api key": ("POST", V2 + "/apis/{api}/subscriptions/{key_sub}/api-keys/"
                                           "{key_id}/_reactivate", None, _publisher(200)),
    "v2 set api key expiry": ("PUT", V2 + "/apis/{api}/subscriptions/{key_sub}/api-keys/{key_id}",
                              {"expireAt": "2099-01-01T00:00:00Z"}, _publisher(200)),
    "v2 set api key expiry in the past": (
        "PUT", V2 + "/apis/{api}/subscriptions/{key_sub}/api-keys/{key_id}",
        {"expireAt": "2001-01-01T00:00:00Z"}, _publisher(400)),
    "v2 set api key expiry bad date": (
        "PUT", V2 + "/apis/{api}/subscriptions/{key_sub}/api-keys/{key_id}",
        {"expireAt": "tomorrow"}, _publisher(400)),
    "v2 set expiry of an unknown api key": (
        "PUT", V2 + "/apis/{api}/subscriptions/{key_sub}/api-keys/nope", {"expireAt": None},
        _publisher(404)),
    "v2 set expiry under another api": (
        "PUT", V2 + "/apis/{push_api}/subscriptions/{key_sub}/api-keys/{key_id}",
        {"expireAt": None}, _publisher(404)),
    "v2 verify a custom key": ("POST", V2 + "/apis/{api}/subscriptions/_verify",
                               {"applicationId": "{app}", "apiKey": "a-free-key-0001"},
                               _publisher(200)),
    "v2 verify a custom key bad form": ("POST", V2 + "/apis/{api}/subscriptions/_verify",
                                       {"applicationId": "{app}", "apiKey": "x y"},
                                       _publisher(400)),
    "v2 verify a custom key without application": (
        "POST", V2 + "/apis/{api}/subscriptions/_verify", {"apiKey": "a-free-key-0001"},
        _publisher(400)),
    "v2 verify a custom key of an unknown api": (
        "POST", V2 + "/apis/nope/subscriptions/_verify",
        {"applicationId": "{app}", "apiKey": "a-free-key-0001"}, _publisher(404)),
    "v2 list subscribers": ("GET", V2 + "/apis/{api}/subscribers", None, READ),
    "v2 list subscribers of an unknown api": ("GET", V2 + "/apis/nope/subscribers", None,
                                              {"admin": 404, "owner": 404, "other": 404}),
    # v2: listener paths
    "v2 verify paths": ("POST", V2 + "/apis/_verify/paths", {"paths": [{"path": "/free"}]},
                        _publisher(200)),
    "v2 verify paths bad body": ("POST", V2 + "/apis/_verify/paths", {"paths": "/free"},
                                 _publisher(400)),
    # v2: plugins
    "v2 list entrypoints": ("GET", "/management/v2/plugins/entrypoints", None, READ),
    "v2 endpoint schema": ("GET", V2 + "/plugins/endpoints/kafka/schema", None, READ),
    "v2 unknown plugin kind": ("GET", "/management/v2/plugins/reporters", None,
                               {"admin": 404, "owner": 404, "other": 404}),
})


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("caller", ["admin", "owner", "other"])
@pytest.mark.parametrize("action", sorted(HTTP_MATRIX))
def test_http_permission_matrix(world, client, action, caller):
    method, path, body, expected = HTTP_MATRIX[action]
    ids = world.ids()
    response = client.open(_fill(path, ids), method=method, headers=USERS[caller],
                           json=_fill(body, ids))
    assert response.status_code == expected[caller], response.get_data(True)
    if response.status_code >= 400:
        body = response.get_json()
        if path.startswith("/management/v2"):  # 4.x's error shape
            assert body["httpStatus"] == response.status_code and "details" in body
            if response.status_code == 400 and " bad " in f" {action} ":  # names the place
                assert body["details"] and body["details"][0]["location"].startswith("$")
        else:
            assert body["http_status"] == response.status_code
    if expected[caller] == 404 and caller == "other":
        # what bob may not see did not change either
        assert ALICE_CALLBACK not in response.get_data(True)
        hook = client.get(f"{P}/subscriptions/{ids['hook_sub']}", headers=ADMIN).get_json()
        assert hook["configuration"]["callbackUrl"] == ALICE_CALLBACK
        assert hook["consumerStatus"] == "STARTED"


LISTS = {  # path -> the key of each item that names its application
    P + "/applications": "id",
    B + "/applications": "id",
    P + "/subscriptions": "application",
    P + "/subscriptions?application={app}": "application",
    P + "/subscriptions?api={push_api}": "application",
    MS: "application",
    MH: "application",
    MH + "?application={app}": "application",
    V2 + "/apis/{push_api}/subscriptions": "application.id",
    V2 + "/apis/{api}/subscriptions?perPage=100": "application.id",
    V2 + "/apis/{push_api}/subscriptions?applicationIds={app}": "application.id",
    V2 + "/apis/{api}/subscribers": "id",
    V2 + "/apis/{push_api}/subscribers": "id",
}


@pytest.mark.parametrize("path", sorted(LISTS), ids=lambda p: p.replace(B, "M").replace(P, "P"))
def test_lists_are_filtered_to_what_the_caller_owns(world, client, path):
    url = _fill(path, world.ids())
    def apps(creds):
        response = client.get(url, headers=creds)
        assert response.status_code == 200, response.get_data(True)
        items = response.get_json()
        if isinstance(items, dict):  # v2: a page
            assert items["pagination"]["totalCount"] == len(items["data"])
            items = items["data"]
        found = set()
        for item in items:
            for part in LISTS[path].split("."):
                item = item[part]
            found.add(item)
        return found
    alice, bob = world.apps["alice"], world.apps["bob"]
    mine = apps(USERS["other"])  # bob
    assert alice not in mine
    assert mine <= {bob}
    assert alice in apps(USERS["owner"]) and bob not in apps(USERS["owner"])
    if "application" not in path.partition("?")[2]:
        assert {alice, bob} <= apps(ADMIN)


def test_no_get_route_leaks_another_applications_key_or_callback(world, management, client):
    """Every GET route of the app (so new routes are covered too), filled with alice's ids,
    read by bob: neither alice's API key nor her callback URL nor the jwt secret appears."""
    ids = world.ids()
    fills = {"api_id": [ids["api"], ids["push_api"]], "app_id": [ids["app"]],
             "sub_id": [ids["key_sub"], ids["hook_sub"]],
             "plan_id": [ids["key_plan"], ids["jwt_plan"], ids["staging"]],
             "username": ["alice"], "env_id": ["DEFAULT"], "org_id": ["DEFAULT"],
             "kind": ["endpoints"], "type_": ["kafka"], "key_id": [ids["key_id"]]}
    checked = 0
    for rule in management.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint.endswith("static"):
            continue  # the console's pages: tests/unit/test_console_permissions.py
        urls = [""]
        for part in rule.rule.split("/")[1:]:
            name = part[1:-1].split(":")[-1] if part.startswith("<") else None
            urls = [u + "/" + value for u in urls for value in (fills[name] if name else [part])]
        for url in urls:
            for caller in ("other", "owner"):
                text = client.get(url, headers=USERS[caller]).get_data(True)
                assert JWT_SECRET not in text, url
                if caller == "other":
                    assert ALICE_KEY not in text and ALICE_CALLBACK not in text, url
            checked += 1
    assert checked >= 15
    # the owner does see its own key and callback (filtering, not blanket masking)
    own = client.get(f"{P}/subscriptions", headers=USERS["owner"]).get_data(True)
    assert ALICE_KEY in own and ALICE_CALLBACK in own


def test_user_sees_the_plan_catalogue_without_security_configuration(world, client):
    url = f"{B}/v4/apis/{world.api}/plans"
    for creds in (USERS["owner"], USERS["other"]):
        plans = {p["id"]: p for p in client.get(url, headers=creds).get_json()}
        assert world.staging not in plans
        assert {world.key_plan, world.jwt_plan} <= set(plans)
        assert plans[world.jwt_plan]["security"] == {"type": "jwt"}
        embedded = client.get(f"{B}/v4/apis/{world.api}", headers=creds).get_json()["plans"]
        assert world.staging not in {p["id"] for p in embedded}
    admin_plans = {p["id"]: p for p in client.get(url, headers=ADMIN).get_json()}
    assert world.staging in admin_plans
    # ADMIN sees the configuration, the secret in it masked like every secret (docs/security.md)
    assert admin_plans[world.jwt_plan]["security"]["configuration"]["resolverParameter"] == "****"


def test_an_application_created_by_a_user_is_its_own_whatever_the_body_says(world, client):
    response = client.post(P + "/applications", headers=USERS["other"],
                           json={"name": "x", "owner": "alice"})
    assert response.status_code == 201 and response.get_json()["owner"] == "bob"
    listed = client.get(P + "/applications", headers=USERS["owner"]).get_json()
    assert response.get_json()["id"] not in {a["id"] for a in listed}


def test_the_clis_owner_name_cannot_become_a_user(client):
    """Applications the CLI creates are owned by `cli`: a user by that name would own them."""
    response = client.put(f"{B}/users/cli", headers=ADMIN,
                          json={"password": "pw-cli-user", "roles": ["USER"]})
    assert response.status_code == 400
    assert response.get_json()["technicalCode"] == "user.username.reserved"
    assert client.get(P + "/applications", headers=basic("cli", "pw-cli-user")).status_code == 401


# -- the service layer, as the CLI (and any other front end) uses it ---------------------------
def _principals():
    from evgate.services.principal import LOCAL_OPERATOR, Principal
    return {"admin": LOCAL_OPERATOR, "owner": Principal("alice", frozenset({"USER"})),
            "other": Principal("bob", frozenset({"USER"}))}


OK = "ok"
#: action -> (call(services, ids), {caller: OK or the exception raised}).
SERVICE_MATRIX: dict[str, tuple[Any, dict[str, Any]]] = {
    "application get": (lambda s, i: s.applications.get(i["app"]),
                        {"admin": OK, "owner": OK, "other": NotFoundError}),
    "application update": (lambda s, i: s.applications.update(i["app"], {"name": "n"}),
                           {"admin": OK, "owner": OK, "other": NotFoundError}),
    "application delete (open subs)": (lambda s, i: s.applications.delete(i["app"]),
                                       {"admin": ConflictError, "owner": ConflictError,
                                        "other": NotFoundError}),
    "subscription get": (lambda s, i: s.subscriptions.get(i["hook_sub"]),
                         {"admin": OK, "owner": OK, "other": NotFoundError}),
    "subscription get under its api": (lambda s, i: s.subscriptions.get(i["key_sub"], i["api"]),
                                       {"admin": OK, "owner": OK, "other": NotFoundError}),
    "subscription update": (lambda s, i: s.subscriptions.update(i["hook_sub"], HOOK_CONFIG),
                            {"admin": OK, "owner": OK, "other": NotFoundError}),
    "consumer status": (lambda s, i: s.subscriptions.change_consumer_status(i["hook_sub"],
                                                                            "STOPPED"),
                        {"admin": OK, "owner": OK, "other": NotFoundError}),
    "subscribe": (lambda s, i: s.subscriptions.create(plan_id=i["key_plan2"],
                                                      application_id=i["app"]),
                  {"admin": OK, "owner": OK, "other": NotFoundError}),
    "subscribe with a chosen key": (lambda s, i: s.subscriptions.create(
        plan_id=i["key_plan2"], application_id=i["app"], api_key="chosen-key-123"),
        {"admin": OK, "owner": ForbiddenError, "other": NotFoundError}),
    "subscribe to a draft plan": (lambda s, i: s.subscriptions.create(
        plan_id=i["staging"], application_id=i["app"]),
        {"admin": Exception, "owner": NotFoundError, "other": NotFoundError}),
    "approve": (lambda s, i: s.subscriptions.process(i["api"], i["key_sub"], {"accepted": True}),
                {"admin": OK, "owner": ForbiddenError, "other": NotFoundError}),
    "pause": (lambda s, i: s.subscriptions.change_status(None, i["hook_sub"], "PAUSED"),
              {"admin": OK, "owner": ForbiddenError, "other": NotFoundError}),
    "close": (lambda s, i: s.subscriptions.close(None, i["key_sub"]),
              {"admin": OK, "owner": ForbiddenError, "other": NotFoundError}),
    "mark failure": (lambda s, i: s.subscriptions.mark_failure(i["hook_sub"], "x"),
                     {"admin": OK, "owner": ForbiddenError, "other": NotFoundError}),
    "draft plan get": (lambda s, i: s.plans.get(i["api"], i["staging"]),
                       {"admin": OK, "owner": NotFoundError, "other": NotFoundError}),
    "draft plan publish": (lambda s, i: s.plans.publish(i["api"], i["staging"]),
                           {"admin": OK, "owner": NotFoundError, "other": NotFoundError}),
    "plan deprecate": (lambda s, i: s.plans.deprecate(i["api"], i["key_plan2"]),
                       {"admin": OK, "owner": ForbiddenError, "other": ForbiddenError}),
    "api get": (lambda s, i: s.apis.get(i["api"]), {"admin": OK, "owner": OK, "other": OK}),
    "api stop": (lambda s, i: s.apis.stop(i["api"]),
                 {"admin": OK, "owner": ForbiddenError, "other": ForbiddenError}),
    "api create": (lambda s, i: s.apis.create(api_definition(path="/new", name="new")),
                   {"admin": OK, "owner": ForbiddenError, "other": ForbiddenError}),
    # what the mAPI v2 added to the services
    "accept": (lambda s, i: s.subscriptions.accept(i["api"], i["key_sub"]),
               {"admin": OK, "owner": ForbiddenError, "other": NotFoundError}),
    "reject": (lambda s, i: s.subscriptions.reject(i["api"], i["key_sub"]),
               {"admin": BadRequestError, "owner": ForbiddenError, "other": NotFoundError}),
    "transfer": (lambda s, i: s.subscriptions.transfer(i["api"], i["key_sub"], i["key_plan2"]),
                 {"admin": OK, "owner": ForbiddenError, "other": NotFoundError}),
    "api keys": (lambda s, i: s.subscriptions.api_keys(i["api"], i["key_sub"]),
                 {"admin": OK, "owner": OK, "other": NotFoundError}),
    "renew key": (lambda s, i: s.subscriptions.renew_key(i["api"], i["key_sub"]),
                  {"admin": OK, "owner": ForbiddenError, "other": NotFoundError}),
    "revoke key": (lambda s, i: s.subscriptions.set_key_revoked(i["api"], i["key_sub"],
                                                                i["key_id"], True),
                   {"admin": OK, "owner": ForbiddenError, "other": NotFoundError}),
    "api search": (lambda s, i: s.apis.search("orders"), {"admin": OK, "owner": OK, "other": OK}),
}


@pytest.mark.parametrize("caller", ["admin", "owner", "other"])
@pytest.mark.parametrize("action", sorted(SERVICE_MATRIX))
def test_service_permission_matrix(world, repo, action, caller):
    from evgate.management.resources import Services
    call, expected = SERVICE_MATRIX[action]
    services = Services.for_repository(repo, _principals()[caller])
    if expected[caller] is OK:
        call(services, world.ids())
    else:
        with pytest.raises(expected[caller]):
            call(services, world.ids())


def test_service_lists_are_filtered(world, repo):
    from evgate.management.resources import Services
    principals = _principals()
    for who, owner in (("owner", "alice"), ("other", "bob")):
        services = Services.for_repository(repo, principals[who])
        assert [a["id"] for a in services.applications.list()] == [world.apps[owner]]
        subs = services.subscriptions.list()
        assert {s["application"] for s in subs} == {world.apps[owner]}
        assert services.subscriptions.list(application_id=world.apps[
            "bob" if owner == "alice" else "alice"]) == []
    admin = Services.for_repository(repo, principals["admin"])
    assert set(world.apps.values()) <= {a["id"] for a in admin.applications.list()}


def test_a_services_object_without_a_caller_sees_nothing(world, repo):
    """Fail closed: the app-wide services object (no request, no caller) is bound to NOBODY."""
    from evgate.management.resources import Services
    services = Services.for_repository(repo)
    assert services.applications.list() == [] and services.subscriptions.list() == []
    with pytest.raises(NotFoundError):
        services.subscriptions.get(world.hook_subs["alice"])
    with pytest.raises(ForbiddenError):
        services.apis.stop(world.api)


def test_a_users_change_to_a_manual_subscription_needs_approval_again(api, repo):
    """A USER's update is a consumer's change however it reaches the service."""
    from evgate.services.principal import Principal
    from evgate.services.subscriptions import SubscriptionService
    api.call("PUT", f"{B}/users/alice", 200, json={"password": "pw-alice", "roles": ["USER"]})
    push_api = api.create_api(push_api_definition())["id"]
    plan = api.create_plan(push_api, "subscription", validation="manual")["id"]
    alice = basic("alice", "pw-alice")
    app = api.call("POST", P + "/applications", 201, headers=alice, json={"name": "a"})["id"]
    sub = api.call("POST", P + "/subscriptions", 201, headers=alice, json={
        "application": app, "plan": plan, "configuration": {
            "entrypointId": "webhook", "callbackUrl": ALICE_CALLBACK}})["id"]
    api.call("POST", f"{B}/v4/apis/{push_api}/subscriptions/{sub}/_process", 200,
             json={"accepted": True})
    service = SubscriptionService(repo, Principal("alice", frozenset({"USER"})))
    changed = service.update(sub, HOOK_CONFIG, by_consumer=False)
    assert changed["status"] == "PENDING"


def test_cli_acts_as_the_local_operator_on_every_application(world, database_url, monkeypatch):
    """The CLI administers: it reads and changes what any USER owns."""
    import json
    from click.testing import CliRunner
    from evgate.cli import main
    monkeypatch.setenv("EVGATE_DATABASE_URL", database_url)
    runner = CliRunner()
    listed = runner.invoke(main, ["--json", "applications", "list"], catch_exceptions=False)
    assert listed.exit_code == 0
    assert set(world.apps.values()) <= {a["id"] for a in json.loads(listed.stdout)}
    paused = runner.invoke(main, ["--json", "subscriptions", "pause", world.hook_subs["bob"]],
                           catch_exceptions=False)
    assert paused.exit_code == 0 and json.loads(paused.stdout)["status"] == "PAUSED"
    made = runner.invoke(main, ["--json", "applications", "create", "ops"],
                         catch_exceptions=False)
    assert json.loads(made.stdout)["owner"] == "cli"
