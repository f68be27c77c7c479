"""API definitions: the saved definition, the deployed one, and the started/stopped state."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from ..errors import NotFoundError
from ..security import secret_fields
from ._rows import Repository, dumps, now, to_dict
from .tables import apis


_JSON = ("definition", "deployed_definition")


def _sealed(repo: "Repository", definition: dict[str, Any]) -> str:
    """The definition as stored: JSON with its secrets encrypted."""
    return dumps(secret_fields.seal(definition, secret_fields.api_definition, repo.keyring))


def _api(repo: "Repository", row: Any) -> dict[str, Any]:
    data = to_dict(row, _JSON)
    for column in _JSON:
        data[column] = secret_fields.unseal(data[column], secret_fields.api_definition,
                                            repo.keyring, f"API {data['id']} {column}")
    return data


class ApiStore:
    def __init__(self, repo: "Repository"):
        self._repo = repo

    def insert(self, api_id: str, definition: dict[str, Any], *, state: str = "STOPPED",
               conn: Connection | None = None) -> None:
        stamp = now()
        with self._repo.write(conn) as conn:
            conn.execute(insert(apis).values(
                id=api_id, name=definition.get("name", api_id),
                definition=_sealed(self._repo, definition),
                deployed_definition=None, state=state, created_at=stamp, updated_at=stamp))

    def get(self, api_id: str) -> dict[str, Any]:
        with self._repo.read() as conn:
            row = conn.execute(select(apis).where(apis.c.id == api_id)).first()
        if row is None:
            raise NotFoundError("Api", api_id)
        return _api(self._repo, row)

    def find(self, api_id: str) -> dict[str, Any] | None:
        try:
            return self.get(api_id)
        except NotFoundError:
            return None

    def list(self) -> list[dict[str, Any]]:
        with self._repo.read() as conn:
            rows = conn.execute(select(apis).order_by(apis.c.created_at, apis.c.id)).all()
        return [_api(self._repo, row) for row in rows]

    def list_started(self) -> list[dict[str, Any]]:
        """What gateways run: started APIs that have been deployed at least once."""
        with self._repo.read() as conn:
            rows = conn.execute(select(apis).where(apis.c.state == "STARTED",
                                                   apis.c.deployed_definition.is_not(None))).all()
        return [_api(self._repo, row) for row in rows]

    def _update(self, api_id: str, conn: Connection | None = None, **values: Any) -> None:
        values["updated_at"] = now()
        with self._repo.write(conn) as conn:
            result = conn.execute(update(apis).where(apis.c.id == api_id).values(**values))
            if result.rowcount == 0:
                raise NotFoundError("Api", api_id)

    def save_definition(self, api_id: str, definition: dict[str, Any],
                        conn: Connection | None = None) -> None:
        self._update(api_id, conn, definition=_sealed(self._repo, definition),
                     name=definition.get("name", api_id))

    def deploy(self, api_id: str, definition: dict[str, Any], label: str | None = None,
               conn: Connection | None = None) -> None:
        self._update(api_id, conn, deployed_definition=_sealed(self._repo, definition),
                     deployed_at=now(),
                     deployment_label=label)

    def set_state(self, api_id: str, state: str, conn: Connection | None = None) -> None:
        self._update(api_id, conn, state=state)

    def delete(self, api_id: str, conn: Connection | None = None) -> None:
        with self._repo.write(conn) as conn:
            result = conn.execute(delete(apis).where(apis.c.id == api_id))
            if result.rowcount == 0:
                raise NotFoundError("Api", api_id)
