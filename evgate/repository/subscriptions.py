"""Subscriptions of applications to plans (status, consumer status, configuration, metadata)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from ..errors import NotFoundError
from ..security import secret_fields
from ._rows import Repository, dumps, now, to_dict
from .storage_errors import storage_errors
from .tables import subscriptions


_JSON = ("configuration", "metadata")


def _sealed(repo: "Repository", configuration: dict[str, Any]) -> str:
    """The configuration as stored: JSON with its webhook secrets encrypted."""
    return dumps(secret_fields.seal(configuration, secret_fields.subscription_configuration,
                                    repo.keyring))


def _subscription(repo: "Repository", row: Any) -> dict[str, Any]:
    data = to_dict(row, _JSON)
    data["configuration"] = secret_fields.unseal(
        data["configuration"], secret_fields.subscription_configuration, repo.keyring,
        f"subscription {data['id']} configuration")
    return data


class SubscriptionStore:
    def __init__(self, repo: "Repository"):
        self._repo = repo

    def insert(self, sub: dict[str, Any], conn: Connection | None = None) -> None:
        stamp = now()
        with self._repo.write(conn) as conn:
            conn.execute(insert(subscriptions).values(
                id=sub["id"], api_id=sub["api_id"], plan_id=sub["plan_id"],
                application_id=sub["application_id"], status=sub["status"],
                consumer_status=sub.get("consumer_status", "STARTED"),
                configuration=_sealed(self._repo, sub.get("configuration") or {}),
                metadata=dumps(sub.get("metadata") or {}), failure_cause=None,
                created_at=stamp, updated_at=stamp))

    def get(self, sub_id: str) -> dict[str, Any]:
        with self._repo.read() as conn:
            row = conn.execute(select(subscriptions).where(subscriptions.c.id == sub_id)).first()
        if row is None:
            raise NotFoundError("Subscription", sub_id)
        return _subscription(self._repo, row)

    def list(self, api_id: str | None = None, statuses: tuple[str, ...] | None = None, *,
             plan_id: str | None = None, application_id: str | None = None
             ) -> list[dict[str, Any]]:
        query = select(subscriptions).order_by(subscriptions.c.created_at, subscriptions.c.id)
        if api_id is not None:
            query = query.where(subscriptions.c.api_id == api_id)
        if plan_id is not None:
            query = query.where(subscriptions.c.plan_id == plan_id)
        if application_id is not None:
            query = query.where(subscriptions.c.application_id == application_id)
        if statuses:
            query = query.where(subscriptions.c.status.in_(statuses))
        with self._repo.read() as conn:
            rows = conn.execute(query).all()
        return [_subscription(self._repo, row) for row in rows]

    def update(self, sub_id: str, conn: Connection | None = None, **values: Any) -> None:
        if "configuration" in values:
            values["configuration"] = _sealed(self._repo, values["configuration"])
        if "metadata" in values:
            values["metadata"] = dumps(values["metadata"])
        values["updated_at"] = now()
        with self._repo.write(conn) as conn:
            result = conn.execute(update(subscriptions).where(subscriptions.c.id == sub_id)
                                  .values(**values))
            if result.rowcount == 0:
                raise NotFoundError("Subscription", sub_id)

    def delete_for_api(self, api_id: str, conn: Connection | None = None) -> None:
        with self._repo.write(conn) as tx:
            tx.execute(delete(subscriptions).where(subscriptions.c.api_id == api_id))

    #: Statuses a delivery failure may overwrite (a closed/rejected/pending one stays as is).
    FAILURE_FROM = ("ACCEPTED", "PAUSED", "FAILURE")

    def mark_failure(self, sub_id: str, reason: str) -> bool:
        """Set FAILURE and its cause atomically, only from a live status; True when set.
        The webhook dispatcher calls this (through SubscriptionService or directly)."""
        with self._repo.write() as tx:
            result = tx.execute(update(subscriptions).where(
                subscriptions.c.id == sub_id, subscriptions.c.status.in_(self.FAILURE_FROM)
            ).values(status="FAILURE", failure_cause=str(reason)[:2000], updated_at=now()))
        return result.rowcount > 0

    def record_deliveries(self, marks: dict[str, Any]) -> None:
        """Set `last_delivery_at` to each subscription's time where it is newer (several
        workers and nodes write their own marks: the newest wins, never an older one).
        Neither the revision nor `updated_at` moves: gateways need not resync for it and the
        subscription itself did not change."""
        if not marks:
            return
        column = subscriptions.c.last_delivery_at
        statement = update(subscriptions).where(
            subscriptions.c.id == bindparam("sub_id"),
            or_(column.is_(None), column < bindparam("at", type_=column.type)),
        ).values(last_delivery_at=bindparam("at", type_=column.type))
        with storage_errors(), self._repo.engine.begin() as conn:
            conn.execute(statement, [{"sub_id": sub_id, "at": at}
                                     for sub_id, at in sorted(marks.items())])
