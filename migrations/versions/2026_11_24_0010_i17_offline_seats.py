"""Offline activation: a machine activated by a licence file holds its seat until the file ends.

Revision ID: 0010_i17_offline_seats
Revises: 0009_i17_licence_terms
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_i17_offline_seats"
down_revision: str | None = "0009_i17_licence_terms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("machines", sa.Column("offline_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("machines") as batch:
        batch.drop_column("offline_until")
