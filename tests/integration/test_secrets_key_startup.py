"""A real gunicorn master refuses to start, with one clear line and no traceback, when the
repository's secrets could not be encrypted: PostgreSQL without EVGATE_SECRETS_KEY, or a
value that is not a Fernet key."""
from __future__ import annotations

import pytest

from tests.support.gateway import GatewayProcess

pytestmark = pytest.mark.integration

# Nothing listens there: the refusal must come before any connection attempt.
POSTGRES = "postgresql+psycopg://evgate:pw@127.0.0.1:9/evgate"


@pytest.mark.parametrize("app", ["wsgi:app", "wsgi:management"])
def test_postgres_without_a_key_refuses_to_start(kafka_bootstrap, tmp_path, app):
    gateway = GatewayProcess(database_url=POSTGRES, kafka_bootstrap=kafka_bootstrap, workers=1,
                             app=app, env={"EVGATE_SECRETS_KEY": ""},
                             log_path=tmp_path / "refused.log")
    with pytest.raises(RuntimeError, match="exited with 1"):
        gateway.start(timeout=30)
    log = gateway.log_path.read_text()
    assert "cannot start: EVGATE_SECRETS_KEY is not set" in log
    assert "evgate secrets generate-key" in log
    assert "Traceback" not in log


def test_a_bad_key_refuses_to_start(kafka_bootstrap, tmp_path, database_url):
    gateway = GatewayProcess(database_url=database_url, kafka_bootstrap=kafka_bootstrap,
                             workers=1, env={"EVGATE_SECRETS_KEY": "hunter2"},
                             log_path=tmp_path / "bad.log")
    with pytest.raises(RuntimeError):
        gateway.start(timeout=30)
    log = gateway.log_path.read_text()
    assert "EVGATE_SECRETS_KEY: key #1 is not a Fernet key" in log
    assert "hunter2" not in log
