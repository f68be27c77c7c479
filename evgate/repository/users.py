"""Management users with hashed passwords (hashing lives in evgate.security.passwords)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update

from ..errors import DuplicateError
from ._rows import Repository, now, to_dict
from .tables import users



class UserStore:
    def __init__(self, repo: "Repository"):
        self._repo = repo

    def get(self, username: str) -> dict[str, Any] | None:
        with self._repo.read() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        return None if row is None else to_dict(row)

    def list(self) -> list[dict[str, Any]]:
        with self._repo.read() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).all()
        return [to_dict(row) for row in rows]

    def upsert(self, username: str, password_hash: str, roles: str) -> None:
        stamp = now()
        with self._repo.write() as conn:
            result = conn.execute(update(users).where(users.c.username == username).values(
                password_hash=password_hash, roles=roles, updated_at=stamp))
            if result.rowcount == 0:
                conn.execute(insert(users).values(username=username, password_hash=password_hash,
                                                  roles=roles, created_at=stamp,
                                                  updated_at=stamp))

    def insert_if_absent(self, username: str, password_hash: str, roles: str) -> bool:
        """True when this call created the user (False: someone else did, e.g. a race)."""
        stamp = now()
        try:
            with self._repo.write() as conn:
                conn.execute(insert(users).values(username=username, password_hash=password_hash,
                                                  roles=roles, created_at=stamp,
                                                  updated_at=stamp))
            return True
        except DuplicateError:
            return False

    def count(self) -> int:
        with self._repo.read() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())
