"""Subscriptions remember who processed them, when and why, and their last webhook delivery.

- `processed_at`, `processed_by`, `publisher_message`: set when a publisher accepts or rejects
  a PENDING subscription (the reason it gave, if any);
- `last_delivery_at`: the newest successful webhook delivery, written by the gateways at most
  every few seconds per subscription (evgate/gateway/last_delivery.py).

All nullable: existing rows read as "never processed / never delivered".

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = (("processed_at", sa.DateTime(timezone=True)),
            ("processed_by", sa.String(255)),
            ("publisher_message", sa.Text),
            ("last_delivery_at", sa.DateTime(timezone=True)))


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        for name, type_ in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        for name, _type in reversed(_COLUMNS):
            batch.drop_column(name)
