"""The relations an erasure left deleted rows in, rewritten by the next maintenance run.

Revision ID: 0017_i15_pending_rewrites
Revises: 0016_i15_ping_minute
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_i15_pending_rewrites"
down_revision: str | None = "0016_i15_ping_minute"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_rewrites",
        sa.Column("relation", sa.String(63), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("relation", name=op.f("pk_pending_rewrites")),
    )


def downgrade() -> None:
    op.drop_table("pending_rewrites")
