"""Shared fixtures of the management API unit tests (Flask test client on SQLite)."""
from __future__ import annotations

import base64
from typing import Any

import pytest

from evgate.config import Config

B = "/management/organizations/DEFAULT/environments/DEFAULT"
P = "/portal/environments/DEFAULT"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = basic("admin", "admin-secret")


def api_definition(path: str = "/orders", name: str = "orders", **extra: Any) -> dict[str, Any]:
    definition = {
        "name": name, "apiVersion": "1.0", "definitionVersion": "4.0.0", "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}],
                       "entrypoints": [{"type": "http-post"}]}],
        "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [
            {"name": "default", "type": "kafka", "inheritConfiguration": False,
             "configuration": {"bootstrapServers": "kafka:9092", "topics": ["orders"]}}]}],
        "flows": [],
    }
    definition.update(extra)
    return definition


def push_api_definition(name: str = "hooks") -> dict[str, Any]:
    return {
        "name": name, "definitionVersion": "4.0.0", "type": "async",
        "listeners": [{"type": "subscription", "entrypoints": [{"type": "webhook"}]}],
        "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [
            {"name": "default", "type": "kafka", "configuration": {"topics": ["demo"]}}]}],
    }


@pytest.fixture
def fast_hashing(monkeypatch):
    """scrypt at production cost takes ~0.3 s per hash; unit tests use a cheap one."""
    import evgate.security.passwords as passwords
    monkeypatch.setattr(passwords, "N", 2 ** 10)
    monkeypatch.setattr(passwords, "P", 1)


@pytest.fixture
def management(repo, database_url, fast_hashing):
    from evgate.management.app import create_management_app
    config = Config.from_env({}, database_url=database_url, admin_password="admin-secret")
    app = create_management_app(config, repository=repo)
    app.testing = True
    return app


@pytest.fixture
def client(management):
    return management.test_client()


class Api:
    """Small helpers over the test client that fail loudly on unexpected statuses."""

    def __init__(self, client):
        self.client = client

    def call(self, method: str, path: str, expect: int, headers=None, **kwargs):
        response = self.client.open(path, method=method, headers=headers or ADMIN, **kwargs)
        assert response.status_code == expect, (response.status_code, response.get_data(True))
        return response.get_json(silent=True)

    def create_api(self, definition=None):
        return self.call("POST", B + "/v4/apis", 201, json=definition or api_definition())

    def create_plan(self, api_id: str, security: str = "key-less", publish: bool = True,
                    **extra: Any):
        body = {"name": security, "characteristics": [], "security": {"type": security}}
        body.update(extra)
        plan = self.call("POST", f"{B}/v4/apis/{api_id}/plans", 201, json=body)
        if publish:
            plan = self.call("POST", f"{B}/v4/apis/{api_id}/plans/{plan['id']}/_publish", 200)
        return plan

    def create_app(self, name: str = "app", **settings: Any):
        return self.call("POST", B + "/applications", 201,
                         json={"name": name, "settings": {"app": {"type": "test", **settings}}})


@pytest.fixture
def api(client):
    return Api(client)
