"""Licence terms for the customer's side: trials, grace after expiry, floating seats.

Revision ID: 0009_i17_licence_terms
Revises: 0008_i20_job_runs
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_i17_licence_terms"
down_revision: str | None = "0008_i20_job_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("licences", sa.Column("trial_days", sa.Integer(), nullable=True))
    op.add_column("licences", sa.Column("grace_days", sa.Integer(), nullable=True))
    op.add_column("licences", sa.Column("lease_minutes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("licences") as batch:
        batch.drop_column("lease_minutes")
        batch.drop_column("grace_days")
        batch.drop_column("trial_days")
