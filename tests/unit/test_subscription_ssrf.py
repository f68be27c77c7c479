"""SSRF at subscription time, as an attacker tries it: every unsafe callback URL is a 400
naming `$.configuration.callbackUrl`, on create and update, through the management API, the
portal API and the CLI (all go through the subscription service), and nothing is stored."""
from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner

from evgate.cli import main
from evgate.entrypoints.webhook import ssrf

from .management_fixtures import B, P, Api, fast_hashing, push_api_definition  # noqa: F401

SAFE = "https://93.184.216.34/hook"   # a public literal: accepted without DNS

#: Fake DNS answers (the real resolver for any other name, `localhost` included).
FAKE_DNS = {
    "internal.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": ["93.184.216.34", "192.168.0.10"],   # public + private: refused
    "v6-loopback.example": ["::1"],
    "ula.example": ["fd00:1234::5"],
}

UNSAFE = [
    # cloud metadata services
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.170.2/v2/credentials",
    "http://100.100.100.200/latest/meta-data/",
    "http://192.0.0.192/opc/v2/instance/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    # RFC 1918, CGNAT, multicast, broadcast, reserved
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "https://172.31.255.254:8443/x",
    "http://192.168.1.1/admin",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    # loopback (the management API itself) and loopback names
    "http://127.0.0.1:8083/management/organizations/DEFAULT/environments/DEFAULT/users",
    "http://127.255.255.254/",
    "http://localhost:8083/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "https://[::1]:8082/",
    # IPv6 link-local, ULA, unspecified, zone ids, IPv4-mapped and NAT64 forms
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456:789a::1]/",
    "http://[::]/",
    "http://[fe80::1%25eth0]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    # other spellings of internal IPv4 addresses
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://0x7f.0.0.1/",
    "http://127.1/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0.0.0.0:8082/",
    "http://0/",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",    # fullwidth digits
    "http://10.0.0.1%2f@93.184.216.34/",
    # schemes other than http(s)
    "file:///etc/passwd",
    "gopher://93.184.216.34:70/_GET%20/",
    "ftp://93.184.216.34/",
    "javascript:alert(1)",
    "dict://93.184.216.34:11211/stat",
    "data:text/plain,hello",
    "ws://93.184.216.34/",
    # credentials in the URL
    "http://user:secret@93.184.216.34/",
    "http://93.184.216.34@10.0.0.1/",
    "http://@93.184.216.34/",
    "http://93.184.216.34\\@10.0.0.1/",
    # white space and control characters, plain or encoded
    "http://93.184.216.34/a b",
    " http://93.184.216.34/",
    "http://93.184.216.34/\r\nX-Injected: 1",
    "http://93.184.216.34/\ttab",
    "http://93.184.216.34/%0d%0aX-Injected:%201",
    "http://93.184.216.34/%00",
    "http://93.184.216.34/\u200b",
    "http://93.184.216.34/\x7f",
    # no host, bad port
    "http:///path",
    "http://:80/",
    "https://",
    "",
    "http://93.184.216.34:99999/",
    # names resolving to internal addresses, or not at all
    "http://internal.example/hook",
    "https://metadata.example/",
    "http://mixed.example/",
    "http://v6-loopback.example/",
    "http://ula.example/",
    "http://nowhere.invalid/hook",
]
NOT_STRINGS = [None, 42, ["http://93.184.216.34/"], {"url": SAFE}]


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    real = socket.getaddrinfo

    def answer(host, port, *args, **kwargs):
        if host in FAKE_DNS:
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6,
                     "", (a, port)) for a in FAKE_DNS[host]]
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, port, *args, **kwargs)
    monkeypatch.setattr(ssrf.socket, "getaddrinfo", answer)


def test_the_table_has_at_least_48_unsafe_urls():
    assert len(set(UNSAFE)) == len(UNSAFE) >= 48


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One management app, push API and plan for the module's many table cases (a fresh
    database per case costs more than all the requests)."""
    import evgate.security.passwords as passwords
    from evgate.config import Config
    from evgate.management.app import create_management_app
    from evgate.repository import open_repository
    url = f"sqlite:///{tmp_path_factory.mktemp('ssrf')}/evgate.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(passwords, "N", 2 ** 10)
        mp.setattr(passwords, "P", 1)
        repository = open_repository(url)
        config = Config.from_env({}, database_url=url, admin_password="admin-secret")
        app = create_management_app(config, repository=repository)
        app.testing = True
        client = Api(app.test_client())
        api_id = client.create_api(push_api_definition())["id"]
        plan = client.create_plan(api_id, "subscription")
        yield client, repository, api_id, plan["id"]
        repository.dispose()


@pytest.fixture
def api(shared):  # noqa: F811 - the module's shared app, not a fresh one per test
    return shared[0]


@pytest.fixture
def repo(shared):
    return shared[1]


@pytest.fixture
def push(shared):
    """(api id, plan id, application id): a new application each time, nothing else."""
    client, _repo, api_id, plan_id = shared
    return api_id, plan_id, client.create_app()["id"]


def _assert_refused(body, url):
    assert body["http_status"] == 400, body
    assert body["technicalCode"] == "subscription.callbackUrl.invalid", body
    assert body["parameters"]["path"] == "$.configuration.callbackUrl", body
    assert body["parameters"]["reason"] and body["message"].startswith(
        "$.configuration.callbackUrl: "), body


def _create(api, route, api_id, plan_id, app_id, url, expect):
    configuration = {"entrypointId": "webhook", "callbackUrl": url}
    if route == "management":
        return api.call("POST", f"{B}/v4/apis/{api_id}/subscriptions?application={app_id}"
                        f"&plan={plan_id}", expect, json={"configuration": configuration})
    return api.call("POST", f"{P}/subscriptions", expect, json={
        "application": app_id, "plan": plan_id, "configuration": configuration})


def _update(api, route, api_id, sub_id, configuration, expect):
    path = f"{B}/v4/apis/{api_id}/subscriptions/{sub_id}" if route == "management" \
        else f"{P}/subscriptions/{sub_id}"
    return api.call("PUT", path, expect, json={"configuration": configuration})


@pytest.mark.parametrize("route", ["management", "portal"])
@pytest.mark.parametrize("url", UNSAFE + NOT_STRINGS)
def test_unsafe_callback_refused_at_create(api, push, route, url):
    api_id, plan_id, app_id = push
    _assert_refused(_create(api, route, api_id, plan_id, app_id, url, 400), url)
    assert api.call("GET", f"{B}/v4/apis/{api_id}/subscriptions?application={app_id}",
                    200) == []
    assert api.call("GET", f"{P}/subscriptions?application={app_id}", 200) == []


@pytest.mark.parametrize("route", ["management", "portal"])
@pytest.mark.parametrize("url", UNSAFE + NOT_STRINGS)
def test_unsafe_callback_refused_at_update(api, push, route, url):
    api_id, plan_id, app_id = push
    sub = _create(api, route, api_id, plan_id, app_id, SAFE, 201)
    _assert_refused(_update(api, route, api_id, sub["id"],
                            {"entrypointId": "webhook", "callbackUrl": url}, 400), url)
    stored = api.call("GET", f"{B}/v4/apis/{api_id}/subscriptions/{sub['id']}", 200)
    assert stored["configuration"] == {"entrypointId": "webhook", "callbackUrl": SAFE}
    assert stored["status"] == "ACCEPTED"


@pytest.mark.parametrize("route", ["management", "portal"])
def test_safe_callbacks_are_accepted_and_updated(api, push, route):
    api_id, plan_id, app_id = push
    sub = _create(api, route, api_id, plan_id, app_id, SAFE, 201)
    other = "http://[2606:4700:4700::1111]:8080/other"
    changed = _update(api, route, api_id, sub["id"],
                      {"entrypointId": "webhook", "callbackUrl": other}, 200)
    assert changed["configuration"]["callbackUrl"] == other


@pytest.mark.parametrize("endpoint", ["http://169.254.169.254/token", "http://10.0.0.1/t",
                                      "file:///etc/passwd", "http://u:p@93.184.216.34/t"])
def test_an_oauth2_token_endpoint_is_vetted_like_the_callback(api, push, endpoint):
    api_id, plan_id, app_id = push
    configuration = {"entrypointId": "webhook", "callbackUrl": SAFE, "auth": {
        "type": "oauth2", "oauth2": {"endpoint": endpoint, "clientId": "c",
                                     "clientSecret": "s"}}}
    body = api.call("POST", f"{P}/subscriptions", 400, json={
        "application": app_id, "plan": plan_id, "configuration": configuration})
    assert body["parameters"]["path"] == "$.configuration.auth.oauth2.endpoint", body
    assert body["parameters"]["reason"].startswith("auth.oauth2.endpoint "), body
    assert api.call("GET", f"{P}/subscriptions?application={app_id}", 200) == []
    configuration["auth"]["oauth2"]["endpoint"] = "https://93.184.216.34/token"
    api.call("POST", f"{P}/subscriptions", 201, json={
        "application": app_id, "plan": plan_id, "configuration": configuration})


def test_webhook_configuration_without_callback_is_refused(api, push):
    api_id, plan_id, app_id = push
    body = api.call("POST", f"{B}/v4/apis/{api_id}/subscriptions?application={app_id}"
                    f"&plan={plan_id}", 400, json={"configuration": {"entrypointId": "webhook"}})
    _assert_refused(body, None)


def test_an_api_key_plan_cannot_smuggle_a_callback(api, push):
    """The dispatcher delivers any ACCEPTED subscription of a webhook API: the check does
    not depend on the plan's security."""
    api_id, _plan_id, app_id = push
    plan = api.create_plan(api_id, "api-key")
    body = api.call("POST", f"{B}/v4/apis/{api_id}/subscriptions?application={app_id}"
                    f"&plan={plan['id']}", 400, json={"configuration": {
                        "entrypointId": "webhook", "callbackUrl": "http://10.0.0.1/"}})
    _assert_refused(body, None)
    assert api.call("GET", f"{P}/subscriptions?application={app_id}", 200) == []


def test_a_stored_unsafe_callback_blocks_metadata_updates(api, push, repo):
    """A callback stored before the check (or under a laxer policy) is judged on any update."""
    api_id, plan_id, app_id = push
    sub = _create(api, "management", api_id, plan_id, app_id, SAFE, 201)
    repo.subscriptions.update(sub["id"], configuration={"entrypointId": "webhook",
                                                        "callbackUrl": "http://10.0.0.1/"})
    body = api.call("PUT", f"{P}/subscriptions/{sub['id']}", 400,
                    json={"metadata": {"feature": "x"}})
    _assert_refused(body, None)
    assert api.call("GET", f"{P}/subscriptions/{sub['id']}", 200)["metadata"] == {}


def test_the_gravitee_nested_shape_is_not_a_way_around(api, push):
    """Gravitee's `consumerConfiguration.entrypointConfiguration` is not read by evgate: a
    push subscription carrying only it is refused, and nothing is stored."""
    api_id, plan_id, app_id = push
    api.call("POST", f"{P}/subscriptions", 400, json={
        "application": app_id, "plan": plan_id, "consumerConfiguration": {
            "entrypointId": "webhook",
            "entrypointConfiguration": {"callbackUrl": "http://169.254.169.254/"}}})
    assert api.call("GET", f"{P}/subscriptions?application={app_id}", 200) == []


def test_the_policy_comes_from_the_management_settings(database_url, fast_hashing):
    """`EVGATE_WEBHOOK_ALLOW_PRIVATE=loopback` (what `make run` sets) admits loopback only."""
    from evgate.config import Config
    from evgate.management.app import create_management_app
    from evgate.repository import open_repository
    repo = open_repository(database_url)
    config = Config.from_env({"EVGATE_WEBHOOK_ALLOW_PRIVATE": "loopback"},
                             database_url=database_url, admin_password="admin-secret")
    lax = Api(create_management_app(config, repository=repo).test_client())
    api_id = lax.create_api(push_api_definition())["id"]
    plan = lax.create_plan(api_id, "subscription")
    app_id = lax.create_app()["id"]
    _create(lax, "portal", api_id, plan["id"], app_id, "http://127.0.0.1:9000/hook", 201)
    other = lax.create_app("other")["id"]
    for url in ("http://localhost:9000/", "http://[::1]:9000/"):
        lax.call("POST", f"{P}/subscriptions", 201, json={
            "application": lax.create_app(f"a{len(url)}{url[7]}")["id"], "plan": plan["id"],
            "configuration": {"entrypointId": "webhook", "callbackUrl": url}})
    for url in ("http://10.0.0.1/", "http://169.254.169.254/"):
        _assert_refused(_create(lax, "portal", api_id, plan["id"], other, url, 400), url)
    repo.dispose()


@pytest.fixture
def cli(database_url, monkeypatch, fast_hashing):
    monkeypatch.setenv("EVGATE_DATABASE_URL", database_url)
    monkeypatch.delenv("EVGATE_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("EVGATE_WEBHOOK_ALLOW_PRIVATE", raising=False)
    monkeypatch.delenv("EVGATE_WEBHOOK_ALLOWED_NETWORKS", raising=False)
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(main, ["--json", *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result
    return run


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://127.0.0.1:8083/",
                                 "file:///etc/passwd", "http://u:p@93.184.216.34/",
                                 "http://localhost/", "http://0x7f000001/"])
def test_the_cli_refuses_unsafe_callbacks_on_create_and_update(cli, tmp_path, url):
    api_file = tmp_path / "api.json"
    api_file.write_text(json.dumps(push_api_definition()))
    api_id = json.loads(cli("apis", "create", str(api_file)).stdout)["id"]
    plan = json.loads(cli("plans", "create", api_id, "--security", "subscription",
                          "--publish").stdout)
    app = json.loads(cli("applications", "create", "consumer").stdout)
    refused = cli("subscriptions", "create", "--plan", plan["id"], "--application", app["id"],
                  "--configuration", json.dumps({"entrypointId": "webhook", "callbackUrl": url}),
                  code=1)
    assert "$.configuration.callbackUrl" in refused.output
    assert json.loads(cli("subscriptions", "list").stdout) == []
    sub = json.loads(cli("subscriptions", "create", "--plan", plan["id"], "--application",
                         app["id"], "--configuration", json.dumps(
                             {"entrypointId": "webhook", "callbackUrl": SAFE})).stdout)
    cli("subscriptions", "update", sub["id"], "--configuration",
        json.dumps({"entrypointId": "webhook", "callbackUrl": url}), code=1)
    stored = json.loads(cli("subscriptions", "get", sub["id"]).stdout)
    assert stored["configuration"]["callbackUrl"] == SAFE
