"""Secrets in responses, as an ADMIN (who sees everything else) would read them: webhook auth
and signing secrets, jwt HMAC secrets and Kafka secrets are `****` in every management, portal
and CLI response; `****` sent back keeps the stored value; a key that cannot decrypt is a 503
with a JSON body; the default key file and its refusals."""
from __future__ import annotations

import json
import logging
import os
import stat
import uuid

import pytest
from click.testing import CliRunner

from evgate.cli import main
from evgate.config import Config
from evgate.errors import ConfigError
from evgate.repository import Repository
from evgate.security.sealing import KEY_FILE_SUFFIX, generate_key, keyring_for

from .management_fixtures import (ADMIN, Api, B, P, api, basic, client,  # noqa: F401
                                  fast_hashing, management, push_api_definition)

TAG = uuid.uuid4().hex[:10]
PASSWORD = f"hook-pw-{TAG}"
TOKEN = f"hook-token-{TAG}"
CLIENT_SECRET = f"oauth-cs-{TAG}"
SIGNING = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NTY3ODk="  # 32 bytes
HMAC = f"jwt-hmac-{TAG}-0123456789abcdef0123"
ALL = (PASSWORD, TOKEN, CLIENT_SECRET, SIGNING, HMAC)
CALLBACK = "http://93.184.216.34:9/hook"


def _basic_config(password: str = PASSWORD) -> dict:
    return {"entrypointId": "webhook", "callbackUrl": CALLBACK, "secret": SIGNING,
            "headers": [{"name": "X-Tenant", "value": "acme"}],
            "auth": {"type": "basic", "basic": {"username": "hook", "password": password}}}


def _no_secret(body) -> None:
    text = json.dumps(body)
    leaked = [s for s in ALL if s in text]
    assert leaked == [], f"secrets in a response: {leaked}"


@pytest.fixture
def push(api):
    api_id = api.create_api(push_api_definition())["id"]
    plan = api.create_plan(api_id, "subscription")
    app = api.create_app()
    return api_id, plan["id"], app["id"]


def test_webhook_secrets_are_masked_in_every_response_even_for_admin(api, push, repo):
    api_id, plan_id, app_id = push
    base = f"{B}/v4/apis/{api_id}/subscriptions"
    created = api.call("POST", f"{base}?application={app_id}&plan={plan_id}", 201,
                       json={"configuration": _basic_config()})
    token_app = api.create_app("token-app")
    portal = api.call("POST", P + "/subscriptions", 201, json={
        "application": token_app["id"], "plan": plan_id, "configuration": {
            "entrypointId": "webhook", "callbackUrl": CALLBACK,
            "auth": {"type": "token", "token": {"value": TOKEN}}}})
    oauth_app = api.create_app("oauth-app")
    oauth = api.call("POST", f"{base}?application={oauth_app['id']}&plan={plan_id}", 201,
                     json={"configuration": {
                         "entrypointId": "webhook", "callbackUrl": CALLBACK,
                         "auth": {"type": "oauth2", "oauth2": {
                             "endpoint": "http://93.184.216.34:9/token", "clientId": "cid",
                             "clientSecret": CLIENT_SECRET}}}})
    responses = [
        created, portal, oauth,
        api.call("GET", base, 200),
        api.call("GET", f"{base}/{created['id']}", 200),
        api.call("GET", f"{B}/applications/{app_id}/subscriptions", 200),
        api.call("GET", P + "/subscriptions", 200),
        api.call("GET", f"{P}/subscriptions/{portal['id']}", 200),
        api.call("PUT", f"{base}/{created['id']}", 200, json={"metadata": {"m": "1"}}),
        api.call("POST", f"{base}/{created['id']}/status?status=PAUSED", 200),
        api.call("POST", f"{P}/subscriptions/{portal['id']}/_changeConsumerStatus"
                 "?status=STOPPED", 200),
    ]
    for body in responses:
        _no_secret(body)
    conf = created["configuration"]
    assert conf["auth"] == {"type": "basic", "basic": {"username": "hook", "password": "****"}}
    assert conf["secret"] == "****" and conf["headers"][0]["value"] == "acme"
    assert portal["configuration"]["auth"]["token"]["value"] == "****"
    assert oauth["configuration"]["auth"]["oauth2"] == {
        "endpoint": "http://93.184.216.34:9/token", "clientId": "cid", "clientSecret": "****"}
    # ... while the gateway's view (the repository) has the real values
    stored = repo.subscriptions.get(created["id"])["configuration"]
    assert stored["auth"]["basic"]["password"] == PASSWORD and stored["secret"] == SIGNING


def test_masked_values_sent_back_keep_the_stored_secrets(api, push, repo):
    api_id, plan_id, app_id = push
    base = f"{B}/v4/apis/{api_id}/subscriptions"
    sub = api.call("POST", f"{base}?application={app_id}&plan={plan_id}", 201,
                   json={"configuration": _basic_config()})
    shown = api.call("GET", f"{base}/{sub['id']}", 200)["configuration"]
    shown["headers"] = [{"name": "X-Tenant", "value": "other"}]  # a change beside the masks
    for path in (f"{base}/{sub['id']}", f"{P}/subscriptions/{sub['id']}"):
        api.call("PUT", path, 200, json={"configuration": shown})
        stored = repo.subscriptions.get(sub["id"])["configuration"]
        assert stored["auth"]["basic"]["password"] == PASSWORD
        assert stored["secret"] == SIGNING and stored["headers"][0]["value"] == "other"
    # a real new value replaces the stored one (and is masked in the answer)
    answer = api.call("PUT", f"{base}/{sub['id']}", 200,
                      json={"configuration": _basic_config("brand-new-pw")})
    assert "brand-new-pw" not in json.dumps(answer)
    assert repo.subscriptions.get(sub["id"])["configuration"]["auth"]["basic"]["password"] == \
        "brand-new-pw"


def test_masked_values_with_nothing_stored_are_400(api, push, repo):
    api_id, plan_id, app_id = push
    base = f"{B}/v4/apis/{api_id}/subscriptions"
    body = api.call("POST", f"{base}?application={app_id}&plan={plan_id}", 400,
                    json={"configuration": _basic_config("****")})
    assert "$.configuration.auth.basic.password" in body["message"]
    sub = api.call("POST", f"{base}?application={app_id}&plan={plan_id}", 201,
                   json={"configuration": _basic_config()})
    # another auth type: "****" has no stored token to keep (no leak of the password into it)
    body = api.call("PUT", f"{P}/subscriptions/{sub['id']}", 400, json={"configuration": {
        "entrypointId": "webhook", "callbackUrl": CALLBACK,
        "auth": {"type": "token", "token": {"value": "****"}}}})
    assert "$.configuration.auth.token.value" in body["message"]
    assert repo.subscriptions.get(sub["id"])["configuration"]["auth"]["type"] == "basic"


def test_masked_credentials_do_not_follow_a_new_target(api, push, repo):
    """Whoever may edit a subscription must not redirect its stored credentials to a server
    of theirs by changing the target and sending "****" back."""
    api_id, plan_id, app_id = push
    base = f"{B}/v4/apis/{api_id}/subscriptions"
    sub = api.call("POST", f"{base}?application={app_id}&plan={plan_id}", 201,
                   json={"configuration": _basic_config()})
    shown = api.call("GET", f"{base}/{sub['id']}", 200)["configuration"]
    moved = {**shown, "callbackUrl": "http://93.184.216.34:9/attacker"}
    for path in (f"{base}/{sub['id']}", f"{P}/subscriptions/{sub['id']}"):
        body = api.call("PUT", path, 400, json={"configuration": moved})
        assert "$.configuration.auth.basic.password" in body["message"]
        assert "callbackUrl" in body["message"] and PASSWORD not in body["message"]
    stored = repo.subscriptions.get(sub["id"])["configuration"]
    assert stored["callbackUrl"] == CALLBACK and stored["auth"]["basic"]["password"] == PASSWORD
    # the real password with the new URL is accepted; the signing secret (never sent) is kept
    moved["auth"] = {"type": "basic", "basic": {"username": "hook", "password": PASSWORD}}
    api.call("PUT", f"{base}/{sub['id']}", 200, json={"configuration": moved})
    stored = repo.subscriptions.get(sub["id"])["configuration"]
    assert stored["callbackUrl"].endswith("/attacker") and stored["secret"] == SIGNING

    oauth_app = api.create_app("oauth-app")
    oauth = {"entrypointId": "webhook", "callbackUrl": CALLBACK, "auth": {
        "type": "oauth2", "oauth2": {"endpoint": "http://93.184.216.34:9/token", "clientId": "c",
                                     "clientSecret": CLIENT_SECRET}}}
    created = api.call("POST", f"{base}?application={oauth_app['id']}&plan={plan_id}", 201,
                       json={"configuration": oauth})
    shown = api.call("GET", f"{base}/{created['id']}", 200)["configuration"]
    shown["auth"]["oauth2"]["endpoint"] = "http://93.184.216.34:9/evil-token"
    body = api.call("PUT", f"{base}/{created['id']}", 400, json={"configuration": shown})
    assert "auth.oauth2.endpoint" in body["message"]
    assert repo.subscriptions.get(created["id"])["configuration"]["auth"]["oauth2"][
        "endpoint"] == "http://93.184.216.34:9/token"


HEADER_TOKEN = f"Bearer header-token-{TAG}"


def test_credential_headers_are_secrets_too(api, push, repo):
    """A webhook header that carries a credential (by its name) is masked, kept by a ****
    sent back even when another header is inserted before it, and not sent to a new target;
    other headers stay visible."""
    api_id, plan_id, app_id = push
    base = f"{B}/v4/apis/{api_id}/subscriptions"
    configuration = {"entrypointId": "webhook", "callbackUrl": CALLBACK, "headers": [
        {"name": "X-Tenant", "value": "acme"}, {"name": "Authorization", "value": HEADER_TOKEN},
        {"name": "X-Api-Key", "value": TOKEN}]}
    # "****" on create: nothing stored to keep
    body = api.call("POST", f"{base}?application={app_id}&plan={plan_id}", 400, json={
        "configuration": {**configuration, "headers": [{"name": "Authorization",
                                                        "value": "****"}]}})
    assert "$.configuration.headers[0].value" in body["message"]
    created = api.call("POST", f"{base}?application={app_id}&plan={plan_id}", 201,
                       json={"configuration": configuration})
    v2 = f"/management/v2/environments/DEFAULT/apis/{api_id}/subscriptions/{created['id']}"
    for shown in (created, api.call("GET", f"{base}/{created['id']}", 200),
                  api.call("GET", f"{P}/subscriptions/{created['id']}", 200),
                  api.call("GET", v2, 200)):
        text = json.dumps(shown)
        assert HEADER_TOKEN not in text and TOKEN not in text and "acme" in text
    headers = api.call("GET", f"{base}/{created['id']}", 200)["configuration"]["headers"]
    assert headers == [{"name": "X-Tenant", "value": "acme"},
                       {"name": "Authorization", "value": "****"},
                       {"name": "X-Api-Key", "value": "****"}]
    # a new header first, the masked ones sent back: the stored values are kept by name
    edited = {**configuration, "headers": [{"name": "X-Trace", "value": "1"}] + headers}
    api.call("PUT", f"{base}/{created['id']}", 200, json={"configuration": edited})
    stored = repo.subscriptions.get(created["id"])["configuration"]["headers"]
    assert stored[2] == {"name": "Authorization", "value": HEADER_TOKEN}
    assert stored[3] == {"name": "X-Api-Key", "value": TOKEN}
    # an attacker who may edit redirects the callback and sends **** back: refused
    moved = {**edited, "callbackUrl": "http://93.184.216.34:9/attacker"}
    for path in (f"{base}/{created['id']}", f"{P}/subscriptions/{created['id']}"):
        body = api.call("PUT", path, 400, json={"configuration": moved})
        assert "$.configuration.headers[2].value" in body["message"]
        assert "callbackUrl" in body["message"] and HEADER_TOKEN not in json.dumps(body)
    # **** under a header name that held nothing: no stored value to borrow
    renamed = {**edited, "headers": [{"name": "Cookie", "value": "****"}]}
    body = api.call("PUT", f"{base}/{created['id']}", 400, json={"configuration": renamed})
    assert "$.configuration.headers[0].value" in body["message"]
    assert repo.subscriptions.get(created["id"])["configuration"]["callbackUrl"] == CALLBACK


@pytest.mark.parametrize("name, secret", [
    ("Authorization", True), ("proxy-authorization", True), ("Cookie", True),
    ("X-Api-Key", True), ("X-Auth-Token", True), ("X-Client-Secret", True),
    ("apikey", True), ("X-Hub-Signature", True), ("X-Tenant", False), ("Accept", False),
    ("X-Request-Id", False), (None, False)])
def test_which_header_names_carry_credentials(name, secret):
    from evgate.security.secret_fields import is_credential_header
    assert is_credential_header(name) is secret


def test_jwt_hmac_secret_is_masked_and_round_trips(api, repo):
    api_id = api.create_api()["id"]
    security = {"type": "jwt", "configuration": {"signature": "HMAC_HS256",
                                                 "resolverParameter": HMAC}}
    plan = api.call("POST", f"{B}/v4/apis/{api_id}/plans", 201,
                    json={"name": "jwt", "security": security})
    base = f"{B}/v4/apis/{api_id}/plans/{plan['id']}"
    published = api.call("POST", base + "/_publish", 200)
    responses = [plan, published, api.call("GET", base, 200),
                 api.call("GET", f"{B}/v4/apis/{api_id}/plans", 200),
                 api.call("GET", f"{B}/v4/apis/{api_id}", 200),
                 api.call("GET", f"{B}/v4/apis", 200)]
    for body in responses:
        _no_secret(body)
    assert published["security"]["configuration"]["resolverParameter"] == "****"
    shown = api.call("GET", base, 200)
    renamed = api.call("PUT", base, 200, json={"name": "renamed", "security": shown["security"]})
    assert renamed["name"] == "renamed"
    api.call("POST", base + "/_deprecate", 200)  # a transition must not store the mask
    assert repo.plans.get(plan["id"])["security"]["configuration"]["resolverParameter"] == HMAC
    body = api.call("POST", f"{B}/v4/apis/{api_id}/plans", 400, json={
        "name": "jwt2", "security": {"type": "jwt", "configuration": {
            "signature": "HMAC_HS256", "resolverParameter": "****"}}})
    assert body["errors"][0]["path"] == "$.security.configuration.resolverParameter"


def test_kafka_secrets_are_masked_for_admin_and_round_trip(api, repo):
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
            f'username="alice" password="{PASSWORD}";')
    definition = push_api_definition()
    definition["endpointGroups"][0]["endpoints"][0]["configuration"]["security"] = {
        "protocol": "SASL_PLAINTEXT", "sasl": {"saslMechanism": "PLAIN", "saslJaasConfig": jaas}}
    created = api.create_api(definition)
    _no_secret(created)
    _no_secret(api.call("GET", f"{B}/v4/apis/{created['id']}", 200))
    shown = api.call("GET", f"{B}/v4/apis/{created['id']}", 200)
    shown_jaas = shown["endpointGroups"][0]["endpoints"][0]["configuration"]["security"][
        "sasl"]["saslJaasConfig"]
    assert 'username="alice"' in shown_jaas and 'password="****"' in shown_jaas
    api.call("PUT", f"{B}/v4/apis/{created['id']}", 200, json=shown)
    stored = repo.apis.get(created["id"])["definition"]
    assert PASSWORD in json.dumps(stored)
    # brokers of the attacker's, with the stored password: refused (it would be sent there)
    endpoint = shown["endpointGroups"][0]["endpoints"][0]
    endpoint["configuration"]["bootstrapServers"] = "attacker.example:9092"
    body = api.call("PUT", f"{B}/v4/apis/{created['id']}", 400, json=shown)
    assert body["errors"][0]["path"].endswith(".sasl.saslJaasConfig")
    assert "bootstrapServers" in body["errors"][0]["message"]
    assert "bootstrapServers" not in repo.apis.get(created["id"])["definition"][
        "endpointGroups"][0]["endpoints"][0]["configuration"]


def test_cli_output_masks_secrets(api, push, database_url, monkeypatch, fast_hashing):
    api_id, plan_id, app_id = push
    sub = api.call("POST", f"{B}/v4/apis/{api_id}/subscriptions?application={app_id}"
                   f"&plan={plan_id}", 201, json={"configuration": _basic_config()})
    monkeypatch.setenv("EVGATE_DATABASE_URL", database_url)
    runner = CliRunner()
    for args in (["--json", "subscriptions", "get", sub["id"]],
                 ["--json", "subscriptions", "list"], ["apis", "export", api_id]):
        result = runner.invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert not [s for s in ALL if s in result.output], args
    assert "****" in runner.invoke(main, ["--json", "subscriptions", "get", sub["id"]]).output


def test_a_key_that_cannot_decrypt_is_a_503_with_a_json_body(api, push, database_url,
                                                             fast_hashing):
    from evgate.management.app import create_management_app
    api_id, plan_id, app_id = push
    sub = api.call("POST", f"{B}/v4/apis/{api_id}/subscriptions?application={app_id}"
                   f"&plan={plan_id}", 201, json={"configuration": _basic_config()})
    wrong = Repository(database_url, generate_key())
    app = create_management_app(Config.from_env({}, database_url=database_url,
                                                admin_password="admin-secret"), repository=wrong)
    response = app.test_client().get(f"{B}/v4/apis/{api_id}/subscriptions/{sub['id']}",
                                     headers=ADMIN)
    assert response.status_code == 503
    body = response.get_json()
    assert "EVGATE_SECRETS_KEY" in body["message"] and "Traceback" not in response.get_data(True)
    assert response.headers["Retry-After"]
    _no_secret(body)
    wrong.dispose()


# -- the default key ---------------------------------------------------------------------------
def test_sqlite_default_key_file_is_private_and_stable(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("EVGATE_SECRETS_KEY", raising=False)
    url = f"sqlite:///{tmp_path}/data/evgate.db"
    with caplog.at_level(logging.WARNING, logger="evgate.security.sealing"):
        first = keyring_for(url)
    path = tmp_path / "data" / ("evgate.db" + KEY_FILE_SUFFIX)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "EVGATE_SECRETS_KEY is not set" in caplog.text and str(path) in caplog.text
    key = path.read_text().strip()
    assert key not in caplog.text
    sealed = first.seal("x")
    caplog.clear()
    assert keyring_for(url).open(sealed) == "x"  # the same file, no second warning
    assert caplog.text == ""
    assert [p.name for p in (tmp_path / "data").iterdir()] == [path.name]  # no temp left


@pytest.mark.parametrize("url", ["postgresql+psycopg://u:p@127.0.0.1:1/db",
                                 "mysql://u:p@127.0.0.1/db"])
def test_other_databases_refuse_to_start_without_a_key(url, monkeypatch):
    monkeypatch.delenv("EVGATE_SECRETS_KEY", raising=False)
    with pytest.raises(ConfigError, match="EVGATE_SECRETS_KEY is not set.*generate-key"):
        keyring_for(url)
    assert keyring_for(url, generate_key()) is not None


def test_bad_setting_values_are_config_errors(monkeypatch):
    with pytest.raises(ConfigError, match="EVGATE_SECRETS_KEY: key #1 is not a Fernet key"):
        Config.from_env({"EVGATE_SECRETS_KEY": "hunter2"})
    key = generate_key()
    assert Config.from_env({"EVGATE_SECRETS_KEY": f" {key} , {generate_key()}"}
                           ).secrets_key[0] == key
    assert Config.from_env({"EVGATE_SECRETS_KEY": key}).as_dict()["secrets_key"] == "****"


def test_cli_rotate_and_generate_key(database_url, monkeypatch, fast_hashing):
    old, new = generate_key(), generate_key()
    monkeypatch.setenv("EVGATE_DATABASE_URL", database_url)
    monkeypatch.setenv("EVGATE_SECRETS_KEY", old)
    runner = CliRunner()
    generated = runner.invoke(main, ["secrets", "generate-key"]).output.strip()
    assert keyring_for(database_url, generated)
    repo = Repository(database_url, old)
    from evgate.repository.database import upgrade
    upgrade(database_url, old)
    repo.subscriptions.insert({"id": "s", "api_id": "a", "plan_id": "p", "application_id": "x",
                               "status": "ACCEPTED", "configuration": _basic_config()})
    monkeypatch.setenv("EVGATE_SECRETS_KEY", f"{new},{old}")
    result = runner.invoke(main, ["--json", "secrets", "rotate"], catch_exceptions=False)
    assert result.exit_code == 0 and json.loads(result.stdout)["subscriptions"] == 1
    assert Repository(database_url, new).subscriptions.get("s")["configuration"] == \
        _basic_config()
    monkeypatch.setenv("EVGATE_SECRETS_KEY", old)  # the old key alone no longer opens it
    result = runner.invoke(main, ["subscriptions", "get", "s"])
    assert result.exit_code == 1 and "EVGATE_SECRETS_KEY" in result.output
    assert "Traceback" not in result.output


def test_exported_definition_reimports_with_its_jwt_secret(repo):
    """`evgate apis export` shows the HMAC secret as ****; importing it back into the same
    installation keeps the stored secret, into a plan that has none it is a 400."""
    from evgate.errors import DefinitionError
    from evgate.services.apis import ApiService
    from evgate.services.principal import LOCAL_OPERATOR
    from .management_fixtures import api_definition
    service = ApiService(repo, LOCAL_OPERATOR)
    definition = api_definition(plans=[{"name": "j", "status": "published", "security": {
        "type": "jwt", "configuration": {"signature": "HMAC_HS256", "resolverParameter": HMAC}}}])
    exported = service.get(service.import_definition(definition)["id"])
    _no_secret(exported)
    service.import_definition(exported)
    plan_id = exported["plans"][0]["id"]
    assert repo.plans.get(plan_id)["security"]["configuration"]["resolverParameter"] == HMAC
    exported["plans"][0]["id"] = "another-plan"
    with pytest.raises(DefinitionError) as caught:
        service.import_definition(exported)
    assert caught.value.problems[0]["path"] == \
        "$.plans[0].security.configuration.resolverParameter"
