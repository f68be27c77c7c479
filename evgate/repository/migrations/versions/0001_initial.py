"""Initial schema: apis, plans, applications, subscriptions, api_keys, users, revision.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "apis",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("deployed_definition", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("deployment_label", sa.String(255), nullable=True),
        _ts("deployed_at", True), _ts("created_at"), _ts("updated_at"),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("api_id", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("security_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("validation", sa.String(16), nullable=False),
        sa.Column("order", sa.Integer, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        _ts("created_at"), _ts("updated_at"),
    )
    op.create_table(
        "applications",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("created_at"), _ts("updated_at"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("api_id", sa.String(64), nullable=False, index=True),
        sa.Column("plan_id", sa.String(64), nullable=False, index=True),
        sa.Column("application_id", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("consumer_status", sa.String(16), nullable=False),
        sa.Column("configuration", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("failure_cause", sa.Text, nullable=True),
        _ts("created_at"), _ts("updated_at"),
    )
    op.create_index("ix_subscriptions_api_status", "subscriptions", ["api_id", "status"])
    op.create_table(
        "api_keys",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("subscription_id", sa.String(64), nullable=False, index=True),
        sa.Column("application_id", sa.String(64), nullable=False),
        sa.Column("api_id", sa.String(64), nullable=False, index=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        _ts("expire_at", True), _ts("created_at"),
    )
    op.create_table(
        "users",
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("password_hash", sa.String(512), nullable=False),
        sa.Column("roles", sa.String(255), nullable=False),
        _ts("created_at"), _ts("updated_at"),
    )
    revision_table = op.create_table(
        "revision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(revision_table, [{"id": 1, "value": 0}])


def downgrade() -> None:
    for table in ("revision", "users", "api_keys", "subscriptions", "applications", "plans",
                  "apis"):
        op.drop_table(table)
