"""Storage of APIs, plans, applications, subscriptions and users (SQLAlchemy Core).

SQLite by default, PostgreSQL for many gateway nodes; the schema is owned by Alembic
migrations (`evgate db upgrade`, also run by the gunicorn master and the CLI at start).
Every write bumps one revision counter in the same transaction, so gateway workers on any
node notice a change with one cheap query (`Repository.revision()`).
"""
from .database import Repository, open_repository

__all__ = ["Repository", "open_repository"]
