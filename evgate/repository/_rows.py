"""Small helpers shared by the entity stores: timestamps, JSON columns, row -> dict."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from contextlib import AbstractContextManager
from typing import Any, Iterable, Protocol

from sqlalchemy.engine import Connection


class Repository(Protocol):
    """What an entity store uses of `evgate.repository.database.Repository` (which builds
    the stores: a protocol here keeps the stores from importing it back)."""

    keyring: Any

    def read(self) -> AbstractContextManager[Connection]: ...

    def write(self, conn: Connection | None = None) -> AbstractContextManager[Connection]: ...


def now() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def to_dict(row: Any, json_columns: Iterable[str] = ()) -> dict[str, Any]:
    data = dict(row._mapping)
    for column in json_columns:
        if column in data:
            data[column] = loads(data[column])
    for key, value in data.items():
        if isinstance(value, datetime) and value.tzinfo is None:  # SQLite drops the zone
            data[key] = value.replace(tzinfo=timezone.utc)
    return data
