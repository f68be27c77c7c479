"""Secrets at rest: encrypt every stored secret; API keys stored by SHA-256 digest.

- apis.definition / deployed_definition, plans.definition, subscriptions.configuration: each
  secret value (evgate/security/secret_fields.py) becomes `fernet:<token>`;
- api_keys: `key` becomes `key_hash` (hex SHA-256, what gateways look keys up by) and the key
  itself is kept only encrypted in `key_sealed` (shown to the owner).

The key is EVGATE_SECRETS_KEY (or the SQLite key file), as for the running repository.
Values already encrypted are left as they are, so running it twice changes nothing.

Revision ID: 0002
Revises: 0001
"""
import hashlib
import json

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_DOCUMENTS = (("apis", "id", ("definition", "deployed_definition"), "api_definition"),
              ("plans", "id", ("definition",), "plan"),
              ("subscriptions", "id", ("configuration",), "subscription_configuration"))


def _keyring():
    from evgate.security.sealing import keyring_for
    config = context.config
    return keyring_for(config.get_main_option("sqlalchemy.url"),
                       config.attributes.get("secrets_key"))


def _rewrite_documents(change) -> None:
    from evgate.security import secret_fields
    conn = op.get_bind()
    for table_name, id_column, columns, provider_name in _DOCUMENTS:
        provider = getattr(secret_fields, provider_name)
        table = sa.table(table_name, sa.column(id_column), *(sa.column(c) for c in columns))
        for row in conn.execute(sa.select(table)).all():
            values = {}
            for column in columns:
                text = getattr(row, column)
                if text is None:
                    continue
                document = json.loads(text)
                changed = change(document, provider, f"{table_name} {row[0]} {column}")
                if changed != document:
                    values[column] = json.dumps(changed, separators=(",", ":"),
                                                sort_keys=True)
            if values:
                conn.execute(sa.update(table).where(table.c[id_column] == row[0])
                             .values(**values))


def upgrade() -> None:
    from evgate.security import secret_fields
    keyring = _keyring()
    if op.get_bind().dialect.name == "sqlite":
        # Overwritten clear values are zeroed in the file, not left in free page space
        # (the default of some SQLite builds only).
        op.execute("PRAGMA secure_delete = ON")
    _rewrite_documents(lambda doc, provider, where:
                       secret_fields.rotate(doc, provider, keyring, where))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("key_sealed", sa.Text, nullable=True))
    conn = op.get_bind()
    keys = sa.table("api_keys", sa.column("key"), sa.column("key_sealed"))
    for (key,) in conn.execute(sa.select(keys.c.key)).all():
        conn.execute(sa.update(keys).where(keys.c.key == key).values(
            key=hashlib.sha256(key.encode("utf-8")).hexdigest(), key_sealed=keyring.seal(key)))
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("key", new_column_name="key_hash", existing_type=sa.String(128),
                           existing_nullable=False)
        batch.alter_column("key_sealed", existing_type=sa.Text, nullable=False)


def downgrade() -> None:
    from evgate.security import secret_fields
    keyring = _keyring()
    _rewrite_documents(lambda doc, provider, where:
                       secret_fields.unseal(doc, provider, keyring, where))
    conn = op.get_bind()
    keys = sa.table("api_keys", sa.column("key_hash"), sa.column("key_sealed"))
    for key_hash, sealed in conn.execute(sa.select(keys.c.key_hash, keys.c.key_sealed)).all():
        conn.execute(sa.update(keys).where(keys.c.key_hash == key_hash).values(
            key_hash=keyring.open(sealed, "api key")))
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("key_hash", new_column_name="key", existing_type=sa.String(128),
                           existing_nullable=False)
        batch.drop_column("key_sealed")
