"""Pings keep the minute they arrived, not the microsecond.

The writer truncates from now on; this truncates the rows already kept (the
column is the partition key on PostgreSQL, so its type stays and its values
change, each within its own day). Going down changes nothing: the seconds
dropped cannot come back, and the column never changed type.

Revision ID: 0016_i15_ping_minute
Revises: 0015_i15_day_keys
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_i15_ping_minute"
down_revision: str | None = "0015_i15_day_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE pings SET received_at = date_trunc('minute', received_at) "
            "WHERE received_at <> date_trunc('minute', received_at)"
        )
    else:
        # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' text: keep 'YYYY-MM-DD HH:MM:'.
        op.execute(
            "UPDATE pings SET received_at = substr(received_at, 1, 17) || '00.000000' "
            "WHERE substr(received_at, 18) != '00.000000'"
        )


def downgrade() -> None:
    pass
