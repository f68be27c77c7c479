"""One contract for every repository backend (run on SQLite and on a real PostgreSQL)."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from evgate.errors import NotFoundError


def _api(name="a", path="/a"):
    return {"id": None, "name": name, "listeners": [{"type": "http", "paths": [{"path": path}],
                                                     "entrypoints": [{"type": "http-post"}]}],
            "endpointGroups": [{"type": "kafka", "endpoints": [{"type": "kafka"}]}]}


def test_schema_is_at_head_and_revision_starts(store):
    from sqlalchemy import inspect
    tables = set(inspect(store.engine).get_table_names())
    assert {"apis", "plans", "applications", "subscriptions", "api_keys", "users", "revision",
            "alembic_version"} <= tables
    assert isinstance(store.revision(), int)


def test_every_write_bumps_the_revision(store):
    start = store.revision()
    store.apis.insert("api-1", _api())
    assert store.revision() == start + 1
    store.apis.set_state("api-1", "STARTED")
    assert store.revision() == start + 2


def test_a_failed_transaction_writes_nothing(store):
    start = store.revision()
    with pytest.raises(RuntimeError):
        with store.write() as conn:
            store.apis.insert("api-x", _api(), conn=conn)
            store.plans.insert({"id": "p1", "apiId": "api-x", "name": "p",
                                "security": {"type": "key-less"}, "status": "staging"}, conn)
            raise RuntimeError("boom")
    assert store.apis.find("api-x") is None
    assert store.plans.list_for_api("api-x") == []
    assert store.revision() == start


def test_joined_writes_bump_once(store):
    start = store.revision()
    with store.write() as conn:
        store.apis.insert("api-j", _api(), conn=conn)
        store.apis.set_state("api-j", "STARTED", conn)
    assert store.revision() == start + 1


def test_apis(store):
    store.apis.insert("a1", _api("one"))
    store.apis.insert("a2", _api("two", "/b"))
    assert [a["id"] for a in store.apis.list()] == ["a1", "a2"]
    assert store.apis.list_started() == []
    store.apis.deploy("a1", {"name": "one", "deployed": True}, "label")
    store.apis.set_state("a1", "STARTED")
    store.apis.set_state("a2", "STARTED")  # started but never deployed: not served
    started = store.apis.list_started()
    assert [a["id"] for a in started] == ["a1"]
    assert started[0]["deployed_definition"] == {"name": "one", "deployed": True}
    assert started[0]["deployment_label"] == "label"
    assert started[0]["deployed_at"].tzinfo is not None
    store.apis.save_definition("a1", {"name": "renamed"})
    assert store.apis.get("a1")["name"] == "renamed"
    store.apis.delete("a1")
    with pytest.raises(NotFoundError):
        store.apis.get("a1")
    with pytest.raises(NotFoundError):
        store.apis.set_state("missing", "STARTED")
    with pytest.raises(NotFoundError):
        store.apis.delete("missing")


def test_plans(store):
    plan = {"id": "p1", "apiId": "a1", "name": "key", "security": {"type": "api-key"},
            "status": "staging", "validation": "manual", "characteristics": ["x"]}
    store.plans.insert(plan)
    got = store.plans.get("p1", "a1")
    assert got["validation"] == "manual" and got["characteristics"] == ["x"]
    with pytest.raises(NotFoundError):
        store.plans.get("p1", "other-api")
    store.plans.update({**plan, "status": "published"})
    assert store.plans.list_for_api("a1")[0]["status"] == "published"
    store.plans.delete("p1")
    with pytest.raises(NotFoundError):
        store.plans.delete("p1")
    store.plans.insert({**plan, "id": "p2"})
    store.plans.delete_for_api("a1")
    assert store.plans.list_for_api("a1") == []


def test_applications(store):
    store.applications.insert("app1", {"name": "one", "settings": {"app": {"client_id": "c"}}},
                              owner="admin")
    assert store.applications.get("app1")["definition"]["settings"]["app"]["client_id"] == "c"
    store.applications.update("app1", {"name": "new", "description": "d"})
    row = store.applications.get("app1")
    assert (row["name"], row["description"], row["owner"]) == ("new", "d", "admin")
    assert [a["id"] for a in store.applications.list()] == ["app1"]
    store.applications.delete("app1")
    with pytest.raises(NotFoundError):
        store.applications.get("app1")


def test_subscriptions_and_api_keys(store):
    store.subscriptions.insert({"id": "s1", "api_id": "a1", "plan_id": "p1",
                                "application_id": "app1", "status": "ACCEPTED",
                                "configuration": {"entrypointId": "webhook"},
                                "metadata": {"feature": "demo"}})
    store.subscriptions.insert({"id": "s2", "api_id": "a1", "plan_id": "p2",
                                "application_id": "app2", "status": "PENDING"})
    sub = store.subscriptions.get("s1")
    assert sub["metadata"] == {"feature": "demo"} and sub["consumer_status"] == "STARTED"
    assert [s["id"] for s in store.subscriptions.list("a1", ("PENDING",))] == ["s2"]
    assert [s["id"] for s in store.subscriptions.list(plan_id="p1")] == ["s1"]
    assert [s["id"] for s in store.subscriptions.list(application_id="app2")] == ["s2"]
    store.subscriptions.update("s1", metadata={"feature": "x"}, failure_cause="why")
    assert store.subscriptions.get("s1")["metadata"] == {"feature": "x"}
    with pytest.raises(NotFoundError):
        store.subscriptions.update("missing", status="PAUSED")

    expired = datetime.now(timezone.utc) - timedelta(days=1)
    store.api_keys.insert("k1", subscription_id="s1", application_id="app1", api_id="a1")
    store.api_keys.insert("k2", subscription_id="s2", application_id="app2", api_id="a1",
                          expire_at=expired)
    usable = {k["key_hash"]: k for k in store.api_keys.list_usable()}
    assert set(usable) == {hashlib.sha256(b"k1").hexdigest()}  # s2 is PENDING
    assert usable[hashlib.sha256(b"k1").hexdigest()]["plan_id"] == "p1"
    assert all("key" not in k and "key_sealed" not in k for k in usable.values())
    assert store.api_keys.find("k1")["key"] == "k1"
    assert store.api_keys.find("k2")["expire_at"] <= datetime.now(timezone.utc)
    store.api_keys.revoke_for_subscription("s1")
    assert store.api_keys.list_usable() == []
    assert store.api_keys.for_subscription("s1")[0]["revoked"] is True
    store.api_keys.delete_for_api("a1")
    store.subscriptions.delete_for_api("a1")
    assert store.api_keys.find("k1") is None and store.subscriptions.list() == []


def test_users(store):
    assert store.users.count() == 0
    assert store.users.insert_if_absent("admin", "h1", "ADMIN") is True
    assert store.users.insert_if_absent("admin", "h2", "ADMIN") is False
    assert store.users.get("admin")["password_hash"] == "h1"
    store.users.upsert("admin", "h3", "ADMIN")
    store.users.upsert("bob", "h4", "USER")
    assert [u["username"] for u in store.users.list()] == ["admin", "bob"]
    assert store.users.get("admin")["password_hash"] == "h3"
    assert store.users.get("nobody") is None
    assert store.users.count() == 2


def test_services_run_on_the_backend(store):
    """The service layer end to end on this backend (create + plan + subscription + key)."""
    from evgate.services.apis import ApiService
    from evgate.services.applications import ApplicationService
    from evgate.services.plans import PlanService
    from evgate.services.subscriptions import SubscriptionService
    from evgate.services.principal import LOCAL_OPERATOR
    op = LOCAL_OPERATOR
    api = ApiService(store, op).create({k: v for k, v in _api().items() if k != "id"})
    plan = PlanService(store, op).create(api["id"], {"name": "k", "security": {"type": "api-key"}})
    PlanService(store, op).publish(api["id"], plan["id"])
    app = ApplicationService(store, op).create({"name": "app"})
    sub = SubscriptionService(store, op).create(plan_id=plan["id"], application_id=app["id"])
    assert sub["status"] == "ACCEPTED" and len(sub["keys"]) == 1
    ApiService(store, op).delete(api["id"])
    assert store.api_keys.find(sub["keys"][0]["key"]) is None


def test_mark_failure_only_from_live_statuses(store):
    for sub_id, status in (("live", "ACCEPTED"), ("closed", "CLOSED")):
        store.subscriptions.insert({"id": sub_id, "api_id": "a", "plan_id": "p",
                                    "application_id": "app", "status": status})
    assert store.subscriptions.mark_failure("live", "receiver answered 500") is True
    row = store.subscriptions.get("live")
    assert (row["status"], row["failure_cause"]) == ("FAILURE", "receiver answered 500")
    assert store.subscriptions.mark_failure("closed", "x") is False
    assert store.subscriptions.get("closed")["status"] == "CLOSED"
    assert store.subscriptions.mark_failure("missing", "x") is False


def test_processing_columns_and_last_delivery_newest_wins(store):
    """Migration 0003 on every backend: who/when/why of processing round-trip; the last
    delivery only moves forward, and writing it does not bump the revision."""
    from datetime import datetime, timedelta, timezone
    for sub_id in ("s1", "s2"):
        store.subscriptions.insert({"id": sub_id, "api_id": "a", "plan_id": "p",
                                    "application_id": "app", "status": "PENDING"})
    fresh = store.subscriptions.get("s1")
    assert (fresh["processed_at"], fresh["processed_by"], fresh["publisher_message"],
            fresh["last_delivery_at"]) == (None, None, None, None)
    when = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
    store.subscriptions.update("s1", status="REJECTED", processed_at=when, processed_by="admin",
                               publisher_message="why \u00e9 " + "x" * 900)
    row = store.subscriptions.get("s1")
    assert (row["processed_at"], row["processed_by"]) == (when, "admin")
    assert row["publisher_message"] == "why \u00e9 " + "x" * 900
    revision = store.revision()
    store.subscriptions.record_deliveries({"s1": when, "s2": when - timedelta(seconds=1)})
    store.subscriptions.record_deliveries({"s1": when - timedelta(seconds=5)})  # older: ignored
    assert store.subscriptions.get("s1")["last_delivery_at"] == when
    store.subscriptions.record_deliveries({"s1": when + timedelta(microseconds=1),
                                           "gone": when})
    assert store.subscriptions.get("s1")["last_delivery_at"] == when + timedelta(microseconds=1)
    assert store.subscriptions.get("s2")["last_delivery_at"] == when - timedelta(seconds=1)
    assert store.revision() == revision
    store.subscriptions.record_deliveries({})


def test_migration_0003_keeps_existing_subscriptions(backend_url):
    """A repository at 0002 with a subscription: after the upgrade it reads as never
    processed nor delivered; the downgrade drops the columns and keeps the row."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from evgate.repository.database import MIGRATIONS_DIR, Repository, upgrade
    from evgate.security.sealing import generate_key
    key = generate_key()
    upgrade(backend_url, key, revision="0002")
    engine = sa.create_engine(backend_url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO subscriptions (id, api_id, plan_id, application_id, status, "
            "consumer_status, configuration, metadata, created_at, updated_at) VALUES "
            "('old', 'a', 'p', 'app', 'REJECTED', 'STARTED', '{}', '{}', :t, :t)"),
            {"t": "2026-01-01 00:00:00+00:00"})
    upgrade(backend_url, key)
    repo = Repository(backend_url, key)
    row = repo.subscriptions.get("old")
    assert row["status"] == "REJECTED" and row["publisher_message"] is None
    assert row["processed_at"] is None and row["last_delivery_at"] is None
    repo.dispose()
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    cfg.set_main_option("sqlalchemy.url", backend_url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    cfg.attributes["secrets_key"] = key
    command.downgrade(cfg, "0002")
    columns = {c["name"] for c in sa.inspect(engine).get_columns("subscriptions")}
    assert "last_delivery_at" not in columns and "publisher_message" not in columns
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM subscriptions WHERE id = 'old'")
                            ).scalar_one() == "REJECTED"
    engine.dispose()
