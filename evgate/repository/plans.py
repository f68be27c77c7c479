"""Plans of an API (security type, status, validation mode)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from ..errors import NotFoundError
from ..security import secret_fields
from ._rows import Repository, dumps, now, to_dict
from .tables import plans



class PlanStore:
    def __init__(self, repo: "Repository"):
        self._repo = repo

    def insert(self, plan: dict[str, Any], conn: Connection | None = None) -> None:
        stamp = now()
        with self._repo.write(conn) as conn:
            conn.execute(insert(plans).values(
                id=plan["id"], api_id=plan["apiId"], name=plan.get("name") or "plan",
                security_type=plan["security"]["type"], status=plan["status"],
                validation=plan.get("validation", "auto"), order=plan.get("order", 0),
                definition=_sealed(self._repo, plan), created_at=stamp, updated_at=stamp))

    def get(self, plan_id: str, api_id: str | None = None) -> dict[str, Any]:
        query = select(plans).where(plans.c.id == plan_id)
        if api_id is not None:
            query = query.where(plans.c.api_id == api_id)
        with self._repo.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFoundError("Plan", plan_id)
        return _plan(self._repo, row)

    def list_for_api(self, api_id: str) -> list[dict[str, Any]]:
        with self._repo.read() as conn:
            rows = conn.execute(select(plans).where(plans.c.api_id == api_id)
                                .order_by(plans.c.order, plans.c.created_at)).all()
        return [_plan(self._repo, row) for row in rows]

    def update(self, plan: dict[str, Any], conn: Connection | None = None) -> None:
        with self._repo.write(conn) as conn:
            result = conn.execute(update(plans).where(plans.c.id == plan["id"]).values(
                name=plan.get("name") or "plan", security_type=plan["security"]["type"],
                status=plan["status"], validation=plan.get("validation", "auto"),
                order=plan.get("order", 0), definition=_sealed(self._repo, plan),
                updated_at=now()))
            if result.rowcount == 0:
                raise NotFoundError("Plan", plan["id"])

    def delete(self, plan_id: str, conn: Connection | None = None) -> None:
        with self._repo.write(conn) as conn:
            result = conn.execute(delete(plans).where(plans.c.id == plan_id))
            if result.rowcount == 0:
                raise NotFoundError("Plan", plan_id)

    def delete_for_api(self, api_id: str, conn: Connection | None = None) -> None:
        with self._repo.write(conn) as conn:
            conn.execute(delete(plans).where(plans.c.api_id == api_id))


def _sealed(repo: "Repository", plan: dict[str, Any]) -> str:
    """The plan as stored: JSON with its secret (a jwt HMAC key) encrypted."""
    return dumps(secret_fields.seal(plan, secret_fields.plan, repo.keyring))


def _plan(repo: "Repository", row: Any) -> dict[str, Any]:
    data = to_dict(row, ("definition",))
    plan = secret_fields.unseal(data["definition"], secret_fields.plan, repo.keyring,
                                f"plan {data['id']}")
    plan.update(id=data["id"], apiId=data["api_id"], status=data["status"],
                createdAt=data["created_at"].isoformat(), updatedAt=data["updated_at"].isoformat())
    return plan
