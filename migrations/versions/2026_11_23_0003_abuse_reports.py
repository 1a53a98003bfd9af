"""Abuse reports, their events (staff notes), and suspicions awaiting confirmation.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UNDER_REVIEW = "status IN ('open', 'acknowledged')"


def upgrade() -> None:
    op.create_table(
        "abuse_reports",
        sa.Column("licence_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("figure", sa.Integer(), nullable=False),
        sa.Column("peak_figure", sa.Integer(), nullable=False),
        sa.Column("allowed", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.Column("opened_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("closed_at", Timestamp, nullable=True),
        sa.Column("evidence", Json, nullable=False),
        sa.CheckConstraint(
            "kind IN ('machines_over_limit', 'users_over_limit', 'machine_churn', "
            "'network_spread')",
            name=op.f("ck_abuse_reports_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'resolved', 'dismissed')",
            name=op.f("ck_abuse_reports_status"),
        ),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["licences.id"],
            name=op.f("fk_abuse_reports_licence_id_licences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("licence_id", "id", name=op.f("pk_abuse_reports")),
    )
    op.create_index(
        op.f("uq_abuse_reports_licence_id_kind_under_review"),
        "abuse_reports",
        ["licence_id", "kind"],
        unique=True,
        postgresql_where=sa.text(UNDER_REVIEW),
        sqlite_where=sa.text(UNDER_REVIEW),
    )
    op.create_index(op.f("ix_abuse_reports_id"), "abuse_reports", ["id"])
    op.create_index(op.f("ix_abuse_reports_severity_id"), "abuse_reports", ["severity", "id"])
    op.create_index(
        op.f("ix_abuse_reports_last_seen_at_id"), "abuse_reports", ["last_seen_at", "id"]
    )

    op.create_table(
        "abuse_report_events",
        sa.Column("licence_id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("note", sa.String(2000), nullable=False),
        sa.ForeignKeyConstraint(
            ["licence_id", "report_id"],
            ["abuse_reports.licence_id", "abuse_reports.id"],
            name=op.f("fk_abuse_report_events_licence_id_abuse_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "licence_id", "report_id", "seq", name=op.f("pk_abuse_report_events")
        ),
    )

    op.create_table(
        "abuse_suspects",
        sa.Column("licence_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("noted_at", Timestamp, nullable=False),
        sa.Column("figure", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["licences.id"],
            name=op.f("fk_abuse_suspects_licence_id_licences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("licence_id", "kind", name=op.f("pk_abuse_suspects")),
    )


def downgrade() -> None:
    op.drop_table("abuse_suspects")
    op.drop_table("abuse_report_events")
    op.drop_table("abuse_reports")
