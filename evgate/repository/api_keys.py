"""API keys issued to accepted subscriptions of api-key plans (read by gateways on sync).

A key is stored as its SHA-256 (`key_hash`, what gateways match a presented key against) and
encrypted (`key_sealed`, what its owner is shown); never in clear. Rows returned to services
carry the decrypted `key`; rows for gateways (`list_usable`) carry only `key_hash`.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from ._rows import Repository, now, to_dict
from .tables import api_keys, subscriptions



def key_hash(key: str) -> str:
    """What a key is looked up by (hex SHA-256: keys are random, or 8+ chars if custom)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeyStore:
    def __init__(self, repo: "Repository"):
        self._repo = repo

    def insert(self, key: str, *, subscription_id: str, application_id: str, api_id: str,
               expire_at: datetime | None = None, conn: Connection | None = None) -> None:
        with self._repo.write(conn) as tx:
            tx.execute(insert(api_keys).values(
                key_hash=key_hash(key), key_sealed=self._repo.keyring.seal(key),
                subscription_id=subscription_id, application_id=application_id,
                api_id=api_id, revoked=False, expire_at=expire_at, created_at=now()))

    def _revealed(self, row: Any) -> dict[str, Any]:
        data = to_dict(row)
        data["key"] = self._repo.keyring.open(data.pop("key_sealed"),
                                              f"API key of subscription "
                                              f"{data['subscription_id']}")
        return data

    def find(self, key: str) -> dict[str, Any] | None:
        with self._repo.read() as conn:
            row = conn.execute(select(api_keys)
                               .where(api_keys.c.key_hash == key_hash(key))).first()
        return None if row is None else self._revealed(row)

    def for_subscription(self, subscription_id: str) -> list[dict[str, Any]]:
        with self._repo.read() as conn:
            rows = conn.execute(select(api_keys)
                                .where(api_keys.c.subscription_id == subscription_id)
                                .order_by(api_keys.c.created_at)).all()
        return [self._revealed(row) for row in rows]

    def revoke_for_subscription(self, subscription_id: str,
                                conn: Connection | None = None) -> None:
        with self._repo.write(conn) as tx:
            tx.execute(update(api_keys).where(api_keys.c.subscription_id == subscription_id)
                       .values(revoked=True))

    def expire_for_subscription(self, subscription_id: str, at: datetime,
                                conn: Connection | None = None) -> None:
        """Make the subscription's live keys expire at `at` (keys that expire sooner keep
        their own date; revoked keys stay revoked)."""
        with self._repo.write(conn) as tx:
            tx.execute(update(api_keys).where(
                api_keys.c.subscription_id == subscription_id, api_keys.c.revoked.is_(False),
                (api_keys.c.expire_at.is_(None)) | (api_keys.c.expire_at > at)
            ).values(expire_at=at))

    def set_revoked(self, subscription_id: str, hashed: str, revoked: bool,
                    conn: Connection | None = None) -> bool:
        """Revoke or reactivate one key of a subscription (by its `key_hash`); True if found."""
        return self._update_one(subscription_id, hashed, conn, revoked=revoked)

    def set_expire_at(self, subscription_id: str, hashed: str, at: datetime | None,
                      conn: Connection | None = None) -> bool:
        """Set (None: clear) one key's expiry (by its `key_hash`); True if found."""
        return self._update_one(subscription_id, hashed, conn, expire_at=at)

    def _update_one(self, subscription_id: str, hashed: str, conn: Connection | None,
                    **values: Any) -> bool:
        with self._repo.write(conn) as tx:
            result = tx.execute(update(api_keys).where(
                api_keys.c.subscription_id == subscription_id, api_keys.c.key_hash == hashed
            ).values(**values))
        return result.rowcount > 0

    def delete_for_api(self, api_id: str, conn: Connection | None = None) -> None:
        with self._repo.write(conn) as tx:
            tx.execute(delete(api_keys).where(api_keys.c.api_id == api_id))

    def list_usable(self) -> list[dict[str, Any]]:
        """Keys gateways accept: not revoked, of ACCEPTED subscriptions (expiry is checked at
        request time, since time passes without a revision bump). Each row carries the
        subscription's `plan_id` and the key's `key_hash`, not the key: gateways hold no
        key in clear."""
        columns = [c for c in api_keys.c if c.name != "key_sealed"]
        query = (select(*columns, subscriptions.c.plan_id)
                 .join(subscriptions, subscriptions.c.id == api_keys.c.subscription_id)
                 .where(api_keys.c.revoked.is_(False), subscriptions.c.status == "ACCEPTED"))
        with self._repo.read() as conn:
            rows = conn.execute(query).all()
        return [to_dict(row) for row in rows]
