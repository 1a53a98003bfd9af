"""Licence keys move to a table of their own, `licence_keys`.

A key must open one licence only. Once licences are spread over shards by their id
(docs/scaling.md, "Moving to Citus"), a unique `licences.key_hash` can no longer be
enforced; `licence_keys`, keyed by the key's HMAC, becomes a reference table on every
node. Going down puts each licence's first key back on it.

Revision ID: 0018_i20_licence_keys
Revises: 0017_i15_pending_rewrites
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_i20_licence_keys"
down_revision: str | None = "0017_i15_pending_rewrites"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "licence_keys",
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("licence_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["licences.id"],
            name=op.f("fk_licence_keys_licence_id_licences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_licence_keys")),
    )
    op.create_index(op.f("ix_licence_keys_licence_id"), "licence_keys", ["licence_id"])
    op.execute(
        "INSERT INTO licence_keys (key_hash, licence_id, created_at) "
        "SELECT key_hash, id, created_at FROM licences"
    )
    with op.batch_alter_table("licences") as batch:
        batch.drop_constraint(op.f("uq_licences_key_hash"), type_="unique")
        batch.drop_column("key_hash")


def downgrade() -> None:
    with op.batch_alter_table("licences") as batch:
        batch.add_column(sa.Column("key_hash", sa.String(64), nullable=True))
    op.execute(
        "UPDATE licences SET key_hash = (SELECT key_hash FROM licence_keys "
        "WHERE licence_keys.licence_id = licences.id ORDER BY created_at, key_hash LIMIT 1)"
    )
    with op.batch_alter_table("licences") as batch:
        batch.alter_column("key_hash", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint(op.f("uq_licences_key_hash"), ["key_hash"])
    op.drop_table("licence_keys")
