"""Shared fixtures. Integration tests use a real Apache Kafka broker (started by
scripts/kafka.sh, or EVGATE_TEST_KAFKA_BOOTSTRAP) and real gunicorn processes."""
from __future__ import annotations

import uuid

import pytest

from evgate.config import Config


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    from tests.support.kafka_broker import ensure_broker
    return ensure_broker()


@pytest.fixture
def unique_topic() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/evgate.db"


@pytest.fixture
def config(database_url) -> Config:
    return Config.from_env({}, database_url=database_url)


@pytest.fixture
def repo(database_url):
    from evgate.repository import open_repository
    repository = open_repository(database_url)
    yield repository
    repository.dispose()


@pytest.fixture
def gateway_factory(kafka_bootstrap, database_url, tmp_path):
    """Start real gateways: `gateway_factory(definitions, workers=2, env={...})`."""
    from tests.support.gateway import GatewayProcess, import_apis
    started = []

    def start(definitions=(), *, workers: int = 2, bootstrap: str | None = None,
              db: str | None = None, **kwargs):
        url = db or database_url
        if definitions:
            import_apis(url, definitions)
        gateway = GatewayProcess(database_url=url, kafka_bootstrap=bootstrap or kafka_bootstrap,
                                 workers=workers, log_path=tmp_path / f"gw{len(started)}.log",
                                 **kwargs)
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()
