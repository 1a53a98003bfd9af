"""A counter of licence changes, which servers on an embedded store poll.

Revision ID: 0014_i16_licence_changes
Revises: 0013_i18_sealed_webhook_secrets
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_i16_licence_changes"
down_revision: str | None = "0013_i18_sealed_webhook_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    changes = op.create_table(
        "licence_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_changes")),
    )
    op.bulk_insert(changes, [{"id": 1, "counter": 0}])


def downgrade() -> None:
    op.drop_table("licence_changes")
