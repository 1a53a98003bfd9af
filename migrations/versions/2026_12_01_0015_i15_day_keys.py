"""Day keys are kept only sealed under a key outside the store.

The table is made anew: the keys of today and yesterday in the clear are dropped
with it (a new random key is made for the day at the next ping), so none is left
behind readable. Going down drops the sealed keys the same way.

Revision ID: 0015_i15_day_keys
Revises: 0014_i16_licence_changes
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_i15_day_keys"
down_revision: str | None = "0014_i16_licence_changes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)


def _day_keys(key_column: sa.Column[bytes]) -> None:
    op.create_table(
        "day_keys",
        sa.Column("day", sa.Date(), nullable=False),
        key_column,
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_day_keys")),
    )


def upgrade() -> None:
    op.drop_table("day_keys")
    _day_keys(sa.Column("sealed_key", sa.LargeBinary(60), nullable=False))


def downgrade() -> None:
    op.drop_table("day_keys")
    _day_keys(sa.Column("key", sa.LargeBinary(32), nullable=False))
