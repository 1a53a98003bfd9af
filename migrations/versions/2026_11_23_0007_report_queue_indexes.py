"""The report queue filters on status first: index it ahead of each sort key.

Closed reports pile up as history while the open queue stays small; with the
status first, the queue's first page reads only the reports under that status.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_abuse_reports_status_severity_id"), "abuse_reports", ["status", "severity", "id"]
    )
    op.create_index(
        op.f("ix_abuse_reports_status_last_seen_at_id"),
        "abuse_reports",
        ["status", "last_seen_at", "id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_abuse_reports_status_last_seen_at_id"), "abuse_reports")
    op.drop_index(op.f("ix_abuse_reports_status_severity_id"), "abuse_reports")
