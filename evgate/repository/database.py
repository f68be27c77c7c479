"""Engine, migrations and the Repository facade.

Entity-specific queries live in one module per entity (`apis.py`, ...); `Repository` groups
them and owns the engine. A write and its revision bump share one transaction.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.engine import Connection, make_url

from .storage_errors import storage_errors
from .tables import revision

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # many processes share one file: WAL
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def upgrade(url: str, secrets_key: Any = None, revision: str = "head") -> None:
    """Create or migrate the schema to the newest revision (Alembic `upgrade head`).
    `secrets_key` (else EVGATE_SECRETS_KEY, else the SQLite key file) seals clear secrets."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    cfg.attributes["secrets_key"] = secrets_key
    command.upgrade(cfg, revision)


class Repository:
    """All storage access. Cheap to create per process; never shared across a fork."""

    def __init__(self, url: str, secrets_key: Any = None):
        from ..security.sealing import keyring_for
        self.url = url
        # Resolved first: a repository whose secrets cannot be sealed does not start.
        self.keyring = keyring_for(url, secrets_key)
        self.engine = _engine(url)
        from .api_keys import ApiKeyStore
        from .apis import ApiStore
        from .applications import ApplicationStore
        from .plans import PlanStore
        from .subscriptions import SubscriptionStore
        from .users import UserStore
        self.apis = ApiStore(self)
        self.plans = PlanStore(self)
        self.applications = ApplicationStore(self)
        self.subscriptions = SubscriptionStore(self)
        self.users = UserStore(self)
        self.api_keys = ApiKeyStore(self)

    def __repr__(self) -> str:
        return f"<Repository {make_url(self.url).render_as_string(hide_password=True)}>"

    @contextmanager
    def write(self, conn: Connection | None = None) -> Iterator[Connection]:
        """A transaction that also bumps the revision gateways watch.

        Given the connection of an outer `write()`, the store call joins that transaction
        (one commit, one revision bump), so a service can change several rows atomically.
        """
        if conn is not None:
            yield conn
            return
        with storage_errors(), self.engine.begin() as conn:
            yield conn
            conn.execute(update(revision).where(revision.c.id == 1)
                         .values(value=revision.c.value + 1))

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with storage_errors(), self.engine.connect() as conn:
            yield conn

    def revision(self) -> int:
        with self.read() as conn:
            return int(conn.execute(select(revision.c.value).where(revision.c.id == 1))
                       .scalar_one())

    def ping(self) -> bool:
        """Readiness: True when the repository answers. Logs when the state changes, not on
        every probe (a load balancer probing every second would flood the log)."""
        try:
            self.revision()
        except Exception as exc:  # noqa: BLE001 - readiness only reports
            if self._reachable:
                logger.warning("repository %r is unreachable: %s", self, type(exc).__name__)
            self._reachable = False
            return False
        if not self._reachable:
            logger.info("repository %r answers again", self)
        self._reachable = True
        return True

    _reachable = True

    def rotate_secrets(self) -> dict[str, int]:
        """Re-encrypt every stored secret with the first key (`evgate secrets rotate`), in one
        transaction; rows per table that held secrets. After it the other keys may go."""
        import json

        from ..security import secret_fields
        from .tables import api_keys, apis, plans, subscriptions
        documents = ((apis, ("definition", "deployed_definition"), secret_fields.api_definition),
                     (plans, ("definition",), secret_fields.plan),
                     (subscriptions, ("configuration",), secret_fields.subscription_configuration))
        counts: dict[str, int] = {}
        with self.write() as conn:
            for table, columns, provider in documents:
                counts[table.name] = 0
                for row in conn.execute(select(table.c.id, *(table.c[c] for c in columns))):
                    values = {}
                    for column in columns:
                        text = row._mapping[column]
                        document = None if text is None else json.loads(text)
                        if document is None or not list(provider(document)):
                            continue
                        rotated = secret_fields.rotate(document, provider, self.keyring,
                                                       f"{table.name} {row.id} {column}")
                        values[column] = json.dumps(rotated, separators=(",", ":"),
                                                    sort_keys=True)
                    if values:
                        conn.execute(update(table).where(table.c.id == row.id).values(**values))
                        counts[table.name] += 1
            counts[api_keys.name] = 0
            for key_hash, sealed in conn.execute(select(api_keys.c.key_hash,
                                                        api_keys.c.key_sealed)).all():
                conn.execute(update(api_keys).where(api_keys.c.key_hash == key_hash).values(
                    key_sealed=self.keyring.rotate(sealed, "api key")))
                counts[api_keys.name] += 1
        logger.info("re-encrypted the stored secrets with the first key: %s", counts)
        return counts

    def dispose(self) -> None:
        self.engine.dispose()


def open_repository(url: str, *, migrate: bool = True, secrets_key: Any = None) -> Repository:
    if migrate:
        upgrade(url, secrets_key)
    return Repository(url, secrets_key)
