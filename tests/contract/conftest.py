"""The repository contract runs over every backend: SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from tests.support.postgres import postgres_server  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/contract.db"
    return request.getfixturevalue("postgres_server").create_database()


@pytest.fixture
def store(backend_url):
    from evgate.repository import open_repository
    repository = open_repository(backend_url)
    yield repository
    repository.dispose()
