"""The `evgate` CLI through click's CliRunner, and once as a real subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from evgate.cli import main
from evgate.security.sealing import generate_key

from .management_fixtures import api_definition, fast_hashing, push_api_definition  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner(database_url, monkeypatch, fast_hashing):
    monkeypatch.setenv("EVGATE_DATABASE_URL", database_url)
    monkeypatch.delenv("EVGATE_ADMIN_PASSWORD", raising=False)
    # A configured key: no first-start warning about a generated key file on stderr.
    monkeypatch.setenv("EVGATE_SECRETS_KEY", generate_key())
    cli = CliRunner()

    def run(*args: str, ok: bool = True, input: str | None = None):
        result = cli.invoke(main, list(args), input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output + (result.stderr or "")
        return result
    return run


def _json(result):
    return json.loads(result.stdout)


def test_every_command_has_help(runner):
    def walk(command, path):
        result = runner(*path, "--help")
        assert "Usage:" in result.output
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, path + [name])
    walk(main, [])


def test_collection_flow_through_the_cli(runner, tmp_path, monkeypatch):
    """What Postman folder 04 (approval workflow) does, done with the CLI."""
    monkeypatch.setenv("EVGATE_WEBHOOK_ALLOW_PRIVATE", "loopback")  # as `make run` does
    api_file = tmp_path / "api.json"
    api_file.write_text(json.dumps(push_api_definition()))
    api = _json(runner("--json", "apis", "create", str(api_file)))
    assert api["state"] == "STOPPED"
    plan = _json(runner("--json", "plans", "create", api["id"], "--security", "subscription",
                        "--validation", "manual", "--publish"))
    assert plan["status"] == "published"
    runner("apis", "start", api["id"])
    runner("apis", "deploy", api["id"])
    app = _json(runner("--json", "applications", "create", "consumer"))
    sub = _json(runner("--json", "subscriptions", "create", "--plan", plan["id"],
                       "--application", app["id"], "--configuration",
                       '{"entrypointId": "webhook", "callbackUrl": "http://127.0.0.1:9/"}',
                       "--metadata", '{"feature": "demo"}'))
    assert sub["status"] == "PENDING"
    bad = runner("--json", "subscriptions", "process", sub["id"], "--accept", "--reason",
                 "x" * 1001, ok=False)
    assert bad.exit_code != 0 and "$.reason" in bad.output + (bad.stderr or "")
    accepted = _json(runner("--json", "subscriptions", "process", sub["id"], "--accept",
                            "--reason", "demo partner"))
    assert accepted["status"] == "ACCEPTED" and accepted["publisherMessage"] == "demo partner"
    assert accepted["processedBy"]["id"] == "cli"
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps({"entrypointId": "webhook", "callbackUrl": "http://127.0.0.1:9/",
                                "headers": [{"name": "a", "value": "b"}]}))
    updated = _json(runner("--json", "subscriptions", "update", sub["id"],
                           "--configuration", f"@{conf}"))
    assert updated["configuration"]["headers"] == [{"name": "a", "value": "b"}]
    assert _json(runner("--json", "subscriptions", "consumer-status", sub["id"], "stopped"))[
        "consumerStatus"] == "STOPPED"
    assert _json(runner("--json", "subscriptions", "pause", sub["id"]))["status"] == "PAUSED"
    assert _json(runner("--json", "subscriptions", "resume", sub["id"]))["status"] == "ACCEPTED"
    human = runner("subscriptions", "list", "--api", api["id"]).stdout
    assert sub["id"] in human and "ACCEPTED" in human
    assert _json(runner("--json", "subscriptions", "close", sub["id"]))["status"] == "CLOSED"
    assert "published" in runner("plans", "list", api["id"]).stdout
    assert _json(runner("--json", "plans", "close", api["id"], plan["id"]))["status"] == "closed"
    runner("applications", "delete", app["id"])
    runner("apis", "delete", api["id"])
    assert runner("apis", "list").stdout.strip() == "no APIs"


def test_api_key_subscription_shows_its_key(runner, tmp_path):
    api_file = tmp_path / "api.json"
    api_file.write_text(json.dumps(api_definition()))
    api_id = _json(runner("--json", "apis", "import", str(api_file)))[0]["id"]
    plan = _json(runner("--json", "plans", "create", api_id, "--security", "api-key",
                        "--publish"))
    app = _json(runner("--json", "applications", "create", "a", "--client-id", "cid"))
    result = runner("subscriptions", "create", "--plan", plan["id"], "--application", app["id"],
                    "--api-key", "custom-key-123")
    assert "key=custom-key-123" in result.stdout


@pytest.mark.parametrize("args,needle", [
    (["apis", "start", "nope"], "Api [nope] can not be found"),
    (["plans", "publish", "nope", "nope"], "Api [nope] can not be found"),
    (["subscriptions", "pause", "nope"], "Subscription [nope] can not be found"),
    (["subscriptions", "create", "--plan", "p", "--application", "a", "--configuration", "{"],
     "--configuration: not valid JSON"),
])
def test_errors_are_one_line_and_non_zero(runner, args, needle):
    result = runner(*args, ok=False)
    assert result.exit_code != 0
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_subscribing_without_entrypoint_fails_clearly(runner, tmp_path):
    api_file = tmp_path / "api.json"
    api_file.write_text(json.dumps(push_api_definition()))
    api = _json(runner("--json", "apis", "create", str(api_file)))
    plan = _json(runner("--json", "plans", "create", api["id"], "--security", "subscription",
                        "--publish"))
    app = _json(runner("--json", "applications", "create", "a"))
    result = runner("subscriptions", "create", "--plan", plan["id"], "--application", app["id"],
                    ok=False)
    assert result.exit_code == 1 and "entrypointId is required" in result.stderr


def test_users_set_password_from_stdin(runner, repo):
    from evgate.services.users import UserService
    runner("users", "set-password", "carol", "--role", "user", "--password-stdin",
           input="s3cret-pw\n")
    assert UserService(repo).authenticate("carol", "s3cret-pw")["roles"] == ["USER"]
    assert UserService(repo).authenticate("carol", "wrong") is None
    assert "carol  USER" in runner("users", "list").stdout


def test_serve_warns_about_the_default_admin_password(runner, monkeypatch):
    """`make run` serves with admin/admin: serve must say it is for local use. The servers
    themselves are replaced by a process that exits at once."""
    import evgate.cli as cli
    monkeypatch.setenv("EVGATE_ADMIN_PASSWORD", "admin")
    monkeypatch.setattr(cli, "_gunicorn_command",
                        lambda *a: [sys.executable, "-c", "pass"])
    result = runner("serve", "management", ok=False)
    assert result.exit_code == 0
    assert "for local use only" in result.stderr


def test_cli_as_a_real_subprocess(database_url, tmp_path):
    env = {**os.environ, "EVGATE_DATABASE_URL": database_url}
    api_file = tmp_path / "api.json"
    api_file.write_text(json.dumps(api_definition()))
    evgate = [sys.executable, "-m", "evgate.cli"]
    done = subprocess.run(evgate + ["--json", "apis", "import", str(api_file)], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["state"] == "STARTED"
    failed = subprocess.run(evgate + ["apis", "stop", "missing"], env=env, capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert failed.returncode == 1
    assert failed.stderr.strip() == "evgate: Api [missing] can not be found"


def test_import_takes_4x_definitions_and_v2_exports(runner, tmp_path):
    """`definitionVersion: V4`, `type: MESSAGE`, upper-case listeners, a PUSH plan without
    security, and the `{api, plans}` document the mAPI v2 exports."""
    definition = push_api_definition()
    definition.update(definitionVersion="V4", type="MESSAGE", id="cli-v4-api")
    definition["listeners"][0]["type"] = "SUBSCRIPTION"
    export = {"api": definition, "plans": [{"id": "cli-v4-plan", "name": "push", "mode": "PUSH",
                                            "status": "PUBLISHED"}]}
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    imported = _json(runner("--json", "apis", "import", str(path)))[0]
    assert imported["id"] == "cli-v4-api" and imported["state"] == "STARTED"
    plans = _json(runner("--json", "plans", "list", "cli-v4-api"))
    assert [(p["id"], p["security"]["type"], p["status"]) for p in plans] == \
        [("cli-v4-plan", "subscription", "published")]
    proxy = {**definition, "id": "cli-proxy", "type": "PROXY"}
    path.write_text(json.dumps(proxy))
    failed = runner("apis", "import", str(path), ok=False)
    assert failed.exit_code == 1 and "$.type: PROXY" in failed.stderr
