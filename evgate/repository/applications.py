"""Applications: the consumers that subscribe to plans."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from ..errors import NotFoundError
from ._rows import Repository, dumps, now, to_dict
from .tables import applications



class ApplicationStore:
    def __init__(self, repo: "Repository"):
        self._repo = repo

    def insert(self, app_id: str, definition: dict[str, Any], owner: str | None = None,
               conn: Connection | None = None) -> None:
        stamp = now()
        with self._repo.write(conn) as tx:
            tx.execute(insert(applications).values(
                id=app_id, name=definition.get("name") or app_id,
                description=definition.get("description"), definition=dumps(definition),
                owner=owner, status="ACTIVE", created_at=stamp, updated_at=stamp))

    def get(self, app_id: str) -> dict[str, Any]:
        with self._repo.read() as conn:
            row = conn.execute(select(applications).where(applications.c.id == app_id)).first()
        if row is None:
            raise NotFoundError("Application", app_id)
        return to_dict(row, ("definition",))

    def list(self) -> list[dict[str, Any]]:
        with self._repo.read() as conn:
            rows = conn.execute(select(applications)
                                .order_by(applications.c.created_at, applications.c.id)).all()
        return [to_dict(row, ("definition",)) for row in rows]

    def update(self, app_id: str, definition: dict[str, Any],
               conn: Connection | None = None) -> None:
        with self._repo.write(conn) as tx:
            result = tx.execute(update(applications).where(applications.c.id == app_id).values(
                name=definition.get("name") or app_id, description=definition.get("description"),
                definition=dumps(definition), updated_at=now()))
            if result.rowcount == 0:
                raise NotFoundError("Application", app_id)

    def delete(self, app_id: str, conn: Connection | None = None) -> None:
        with self._repo.write(conn) as tx:
            result = tx.execute(delete(applications).where(applications.c.id == app_id))
            if result.rowcount == 0:
                raise NotFoundError("Application", app_id)


def client_id(application_definition: dict[str, Any]) -> str | None:
    """The OAuth client id JWT plans match against (`settings.app.client_id`)."""
    settings = application_definition.get("settings") or {}
    app = settings.get("app") or {}
    oauth = settings.get("oauth") or {}
    return app.get("client_id") or app.get("clientId") or oauth.get("client_id")
