"""The customer page: its signed-in sessions, and erasure requests awaiting staff.

Revision ID: 0011_i17_customer_page
Revises: 0010_i17_offline_seats
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_i17_customer_page"
down_revision: str | None = "0010_i17_offline_seats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customer_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("licence_id", sa.Uuid(), nullable=False),
        sa.Column("csrf_secret", sa.String(64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_used_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["licences.id"],
            name=op.f("fk_customer_sessions_licence_id_licences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_customer_sessions")),
    )
    op.create_index(op.f("ix_customer_sessions_licence_id"), "customer_sessions", ["licence_id"])
    op.create_index(op.f("ix_customer_sessions_expires_at"), "customer_sessions", ["expires_at"])
    op.create_table(
        "erasure_requests",
        sa.Column("licence_id", sa.Uuid(), nullable=False),
        sa.Column("requested_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["licences.id"],
            name=op.f("fk_erasure_requests_licence_id_licences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("licence_id", name=op.f("pk_erasure_requests")),
    )


def downgrade() -> None:
    op.drop_table("erasure_requests")
    op.drop_index(op.f("ix_customer_sessions_expires_at"), table_name="customer_sessions")
    op.drop_index(op.f("ix_customer_sessions_licence_id"), table_name="customer_sessions")
    op.drop_table("customer_sessions")
