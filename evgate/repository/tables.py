"""The tables. Migrations in `migrations/versions/` must create exactly these."""
from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Index, Integer, MetaData, String,
                        Table, Text)

metadata = MetaData()

apis = Table(
    "apis", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("definition", Text, nullable=False),           # the saved definition (JSON)
    Column("deployed_definition", Text, nullable=True),   # what gateways run once deployed (JSON)
    Column("state", String(16), nullable=False, default="STOPPED"),  # STARTED | STOPPED
    Column("deployment_label", String(255), nullable=True),
    Column("deployed_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

plans = Table(
    "plans", metadata,
    Column("id", String(64), primary_key=True),
    Column("api_id", String(64), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("security_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),         # staging|published|deprecated|closed
    Column("validation", String(16), nullable=False, default="auto"),
    Column("order", Integer, nullable=False, default=0),
    Column("definition", Text, nullable=False),           # the full plan (JSON)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

applications = Table(
    "applications", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=True),
    Column("definition", Text, nullable=False),           # settings etc. (JSON)
    Column("owner", String(255), nullable=True),
    Column("status", String(16), nullable=False, default="ACTIVE"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

subscriptions = Table(
    "subscriptions", metadata,
    Column("id", String(64), primary_key=True),
    Column("api_id", String(64), nullable=False, index=True),
    Column("plan_id", String(64), nullable=False, index=True),
    Column("application_id", String(64), nullable=False, index=True),
    # PENDING | ACCEPTED | REJECTED | PAUSED | CLOSED | FAILURE
    Column("status", String(16), nullable=False),
    Column("consumer_status", String(16), nullable=False, default="STARTED"),  # STARTED|STOPPED
    Column("configuration", Text, nullable=False, default="{}"),
    Column("metadata", Text, nullable=False, default="{}"),
    Column("failure_cause", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # accept/reject by a publisher (migration 0003)
    Column("processed_at", DateTime(timezone=True), nullable=True),
    Column("processed_by", String(255), nullable=True),
    Column("publisher_message", Text, nullable=True),
    # newest successful webhook delivery; gateways write it at most every few seconds
    Column("last_delivery_at", DateTime(timezone=True), nullable=True),
)

api_keys = Table(
    "api_keys", metadata,
    # Gateways look a key up by its SHA-256 (hex); the key itself is stored only encrypted
    # (`fernet:...`), for its owner to read (migration 0002).
    Column("key_hash", String(128), primary_key=True),
    Column("key_sealed", Text, nullable=False),
    Column("subscription_id", String(64), nullable=False, index=True),
    Column("application_id", String(64), nullable=False),
    Column("api_id", String(64), nullable=False, index=True),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("expire_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

users = Table(
    "users", metadata,
    Column("username", String(255), primary_key=True),
    Column("password_hash", String(512), nullable=False),
    Column("roles", String(255), nullable=False, default="USER"),  # comma separated
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

revision = Table(
    "revision", metadata,
    Column("id", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

Index("ix_subscriptions_api_status", subscriptions.c.api_id, subscriptions.c.status)
