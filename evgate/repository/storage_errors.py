"""The one place the database's refusals become client errors (never a 500): a unique
violation -> DuplicateError (409), a value the database cannot store -> 400."""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.exc import DataError, IntegrityError

from ..errors import BadRequestError, DuplicateError

logger = logging.getLogger(__name__)

#: table -> (entity, column naming it in the error); API keys are secrets: never named
_ENTITIES = {"apis": ("API", "id"), "plans": ("plan", "id"),
             "applications": ("application", "id"), "subscriptions": ("subscription", "id"),
             "api_keys": ("API key", None), "users": ("user", "username")}
_COLUMNS = re.compile(r"\(([^)]*)\)\s*VALUES", re.IGNORECASE)
_TABLE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


def _is_unique_violation(exc: IntegrityError) -> bool:
    orig = exc.orig
    return (getattr(orig, "sqlstate", None) == "23505"  # PostgreSQL unique_violation
            or getattr(orig, "sqlite_errorname", "") in ("SQLITE_CONSTRAINT_PRIMARYKEY",
                                                         "SQLITE_CONSTRAINT_UNIQUE")
            or "UNIQUE constraint failed" in str(orig))


@contextmanager
def storage_errors() -> Iterator[None]:
    """The one place the database's refusals become client errors (never a 500): a unique
    violation (two writers racing past a service's existence check, a definition repeating
    a plan id) -> DuplicateError (409); a value the database cannot store (too long for its
    column, a NUL byte in PostgreSQL text) -> 400. Messages never carry SQL or values."""
    try:
        yield
    except IntegrityError as exc:
        if not _is_unique_violation(exc):
            raise
        match = _TABLE.match(exc.statement or "")
        entity, column = _ENTITIES.get(match.group(1).lower() if match else "", ("entity", None))
        params = exc.params
        if isinstance(params, (tuple, list)):  # positional (SQLite): pair with the columns
            columns = _COLUMNS.search(exc.statement or "")
            names = [c.strip().strip('"') for c in columns.group(1).split(",")] if columns else []
            params = dict(zip(names, params)) if len(names) == len(params) else {}
        params = params if isinstance(params, dict) else {}
        ident = params.get(column) if column else None
        named = f" {ident}" if isinstance(ident, str) and len(ident) <= 255 else ""
        logger.info("refused a duplicate %s: %s", entity, type(exc.orig).__name__)
        raise DuplicateError(f"{entity}{named} already exists",
                             key=f"{entity.replace(' ', '').lower()}.exists") from None
    except DataError as exc:
        logger.info("the repository refused a value: %s", type(exc.orig).__name__)
        raise BadRequestError("a value cannot be stored (too long for its field, or text "
                              "with a NUL character)", key="value.invalid") from None
