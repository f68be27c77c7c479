"""Secrets at rest, on SQLite and PostgreSQL: what the database holds (read raw, as someone
with a copy of the file or a dump would) contains no secret; the repository reads them back;
migration 0002 seals rows written in clear before it; rotation; a wrong key is a clear error."""
from __future__ import annotations

import hashlib
import json
import os
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from evgate.errors import ConfigError
from evgate.repository import Repository
from evgate.repository.database import MIGRATIONS_DIR, upgrade
from evgate.security.sealing import SecretsKeyError, generate_key

TAG = uuid.uuid4().hex[:12]
SECRETS = {
    "jaas password": f"jaas-pw-{TAG}",
    "store password": f"store-pw-{TAG}",
    "key password": f"key-pw-{TAG}",
    "inline key": f"-----BEGIN PRIVATE KEY-----{TAG}",
    "jwt hmac": f"jwt-hmac-secret-{TAG}-0123456789abcdef",
    "basic password": f"basic-pw-{TAG}",
    "bearer token": f"bearer-{TAG}",
    "oauth2 secret": f"oauth-cs-{TAG}",
    "signing secret": f"whsec_{TAG}",
    "api key": f"api-key-{TAG}",
    "header credential": f"Bearer hdr-{TAG}",
}


def _definition(api_id: str) -> dict:
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
            f'username="alice" password="{SECRETS["jaas password"]}";')
    return {"id": api_id, "name": api_id, "listeners": [], "endpointGroups": [{
        "name": "g", "type": "kafka", "endpoints": [{"name": "e", "type": "kafka",
                                                     "configuration": {"security": {
            "protocol": "SASL_SSL",
            "sasl": {"saslMechanism": "PLAIN", "saslJaasConfig": jaas},
            "ssl": {"trustStore": {"type": "PKCS12", "location": "/t.p12",
                                   "password": SECRETS["store password"]},
                    "keyStore": {"type": "PEM", "key": SECRETS["inline key"],
                                 "keyPassword": SECRETS["key password"]}}}}}]}]}


def _plan(plan_id: str, api_id: str) -> dict:
    return {"id": plan_id, "apiId": api_id, "name": "jwt", "status": "published",
            "validation": "auto", "security": {"type": "jwt", "configuration": {
                "signature": "HMAC_HS256", "resolverParameter": SECRETS["jwt hmac"]}}}


def _configuration(kind: str) -> dict:
    auth = {"basic": {"type": "basic", "basic": {"username": "u",
                                                 "password": SECRETS["basic password"]}},
            "token": {"type": "token", "token": {"value": SECRETS["bearer token"]}},
            "oauth2": {"type": "oauth2", "oauth2": {"endpoint": "https://idp.example/token",
                                                    "clientId": "c",
                                                    "clientSecret": SECRETS["oauth2 secret"]}},
            }[kind]
    return {"entrypointId": "webhook", "callbackUrl": "https://receiver.example/hook",
            "auth": auth, "secret": SECRETS["signing secret"],
            "headers": [{"name": "X-Tenant", "value": "acme"},
                        {"name": "Authorization", "value": SECRETS["header credential"]}]}


def _fill(repo: Repository) -> None:
    repo.apis.insert("api1", _definition("api1"))
    repo.apis.deploy("api1", _definition("api1"))
    repo.plans.insert(_plan("plan1", "api1"))
    for kind in ("basic", "token", "oauth2"):
        repo.subscriptions.insert({"id": f"sub-{kind}", "api_id": "api1", "plan_id": "plan1",
                                   "application_id": "app1", "status": "ACCEPTED",
                                   "configuration": _configuration(kind)})
    repo.api_keys.insert(SECRETS["api key"], subscription_id="sub-basic",
                         application_id="app1", api_id="api1")


def _raw_dump(url: str) -> str:
    """Every row of every table as text, read without evgate."""
    engine = sa.create_engine(url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(str(tuple(row)) for table in tables.sorted_tables
                             for row in conn.execute(sa.select(table)))
    finally:
        engine.dispose()


def _assert_nothing_in_clear(url: str) -> None:
    dump = _raw_dump(url)
    found = [name for name, value in SECRETS.items() if value in dump]
    assert found == [], f"in clear in the database: {found}"
    # JSON escaping must not hide a secret either
    assert not any(json.dumps(value)[1:-1] in dump for value in SECRETS.values())
    assert "fernet:" in dump


def _assert_reads_back(repo: Repository) -> None:
    api = repo.apis.get("api1")
    for column in ("definition", "deployed_definition"):
        security = api[column]["endpointGroups"][0]["endpoints"][0]["configuration"]["security"]
        assert SECRETS["jaas password"] in security["sasl"]["saslJaasConfig"]
        assert security["ssl"]["trustStore"]["password"] == SECRETS["store password"]
        assert security["ssl"]["keyStore"]["key"] == SECRETS["inline key"]
        assert security["ssl"]["keyStore"]["keyPassword"] == SECRETS["key password"]
    assert repo.plans.get("plan1")["security"]["configuration"]["resolverParameter"] == \
        SECRETS["jwt hmac"]
    for kind in ("basic", "token", "oauth2"):
        assert repo.subscriptions.get(f"sub-{kind}")["configuration"] == _configuration(kind)
    assert repo.api_keys.find(SECRETS["api key"])["key"] == SECRETS["api key"]
    assert repo.api_keys.for_subscription("sub-basic")[0]["key"] == SECRETS["api key"]
    usable = repo.api_keys.list_usable()
    assert [k["key_hash"] for k in usable] == [
        hashlib.sha256(SECRETS["api key"].encode()).hexdigest()]


def test_nothing_in_clear_at_rest_and_everything_reads_back(backend_url):
    key = generate_key()
    upgrade(backend_url, key)
    repo = Repository(backend_url, key)
    try:
        _fill(repo)
        repo.subscriptions.update("sub-token", configuration=_configuration("token"))
        repo.apis.save_definition("api1", _definition("api1"))
        _assert_nothing_in_clear(backend_url)
        _assert_reads_back(repo)
    finally:
        repo.dispose()


def test_rotation_and_wrong_keys(backend_url):
    old, new, stranger = generate_key(), generate_key(), generate_key()
    upgrade(backend_url, old)
    repo = Repository(backend_url, old)
    _fill(repo)
    repo.dispose()
    before = _raw_dump(backend_url)

    both = Repository(backend_url, f"{new},{old}")  # new first: it seals, both open
    _assert_reads_back(both)
    counts = both.rotate_secrets()
    assert counts == {"apis": 1, "plans": 1, "subscriptions": 3, "api_keys": 1}
    both.dispose()
    assert _raw_dump(backend_url) != before
    _assert_nothing_in_clear(backend_url)

    only_new = Repository(backend_url, new)  # the old key is dropped
    _assert_reads_back(only_new)
    only_new.dispose()

    for wrong in (old, stranger):
        repo = Repository(backend_url, wrong)
        with pytest.raises(SecretsKeyError) as caught:
            repo.subscriptions.get("sub-basic")
        assert caught.value.status == 503 and "EVGATE_SECRETS_KEY" in caught.value.message
        assert SECRETS["basic password"] not in caught.value.message
        with pytest.raises(SecretsKeyError):
            repo.apis.list()
        repo.dispose()


def test_a_key_that_is_not_a_fernet_key_is_refused(backend_url):
    with pytest.raises(ConfigError, match="key #2 is not a Fernet key"):
        Repository(backend_url, f"{generate_key()},not-a-key")


def _alembic(url: str, key: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    cfg.attributes["secrets_key"] = key
    return cfg


def test_migration_0002_seals_rows_written_in_clear(backend_url):
    """A repository from before encryption (0001): its clear rows are sealed by the upgrade,
    read back by evgate, and the downgrade gives them back in clear."""
    key = generate_key()
    upgrade(backend_url, key, revision="0001")
    engine = sa.create_engine(backend_url)
    stamp = "2026-01-01 00:00:00+00:00"
    plan = _plan("plan1", "api1")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO apis (id, name, definition, deployed_definition, state, created_at, "
            "updated_at) VALUES ('api1', 'api1', :d, :d, 'STARTED', :t, :t)"),
            {"d": json.dumps(_definition("api1")), "t": stamp})
        conn.execute(sa.text(
            'INSERT INTO plans (id, api_id, name, security_type, status, validation, "order", '
            "definition, created_at, updated_at) VALUES ('plan1', 'api1', 'jwt', 'jwt', "
            "'published', 'auto', 0, :d, :t, :t)"), {"d": json.dumps(plan), "t": stamp})
        for kind in ("basic", "token", "oauth2"):
            conn.execute(sa.text(
                "INSERT INTO subscriptions (id, api_id, plan_id, application_id, status, "
                "consumer_status, configuration, metadata, created_at, updated_at) VALUES "
                "(:id, 'api1', 'plan1', 'app1', 'ACCEPTED', 'STARTED', :c, '{}', :t, :t)"),
                {"id": f"sub-{kind}", "c": json.dumps(_configuration(kind)), "t": stamp})
        conn.execute(sa.text(
            "INSERT INTO api_keys (key, subscription_id, application_id, api_id, revoked, "
            "created_at) VALUES (:k, 'sub-basic', 'app1', 'api1', false, :t)"),
            {"k": SECRETS["api key"], "t": stamp})
    engine.dispose()
    assert SECRETS["basic password"] in _raw_dump(backend_url)

    upgrade(backend_url, key)
    _assert_nothing_in_clear(backend_url)
    repo = Repository(backend_url, key)
    _assert_reads_back(repo)
    repo.dispose()
    if backend_url.startswith("sqlite"):  # nor left behind in the file's free space
        path = backend_url.split("///", 1)[1]
        raw = b"".join(open(p, "rb").read() for p in (path, path + "-wal")
                       if os.path.exists(p))
        assert [n for n, v in SECRETS.items() if v.encode() in raw] == []
    upgrade(backend_url, key)  # nothing left to do: no change
    _assert_nothing_in_clear(backend_url)

    command.downgrade(_alembic(backend_url, key), "0001")
    dump = _raw_dump(backend_url)
    assert SECRETS["basic password"] in dump and SECRETS["api key"] in dump
    assert "fernet:" not in dump
