"""Initial schema: licences, machines, pings, staff tokens, audit log, day keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

PING_COLUMNS = """
    licence_id uuid NOT NULL,
    received_at timestamptz NOT NULL,
    machine_id varchar(32) NOT NULL,
    net_id varchar(16) NOT NULL,
    product varchar(32) NOT NULL,
    version varchar(32) NOT NULL,
    channel varchar(16) NOT NULL,
    user_count integer NOT NULL,
    signatures jsonb,
    status varchar(16) NOT NULL,
    seat varchar(8) NOT NULL
"""


def upgrade() -> None:
    op.create_table(
        "licences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("key_last4", sa.String(4), nullable=False),
        sa.Column("max_machines", sa.Integer(), nullable=False),
        sa.Column("max_users", sa.Integer(), nullable=True),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.Column("updates_until", sa.Date(), nullable=True),
        sa.Column("entitlements", Json, nullable=False),
        sa.Column("overage", sa.String(8), nullable=False),
        sa.Column("activity_window_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'revoked')", name=op.f("ck_licences_status")
        ),
        sa.CheckConstraint("overage IN ('report', 'deny')", name=op.f("ck_licences_overage")),
        sa.CheckConstraint("max_machines >= 1", name=op.f("ck_licences_max_machines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licences")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_licences_key_hash")),
    )
    op.create_index(op.f("ix_licences_product"), "licences", ["product"])
    op.create_index(op.f("ix_licences_created_at_id"), "licences", ["created_at", "id"])

    op.create_table(
        "machines",
        sa.Column("licence_id", sa.Uuid(), nullable=False),
        sa.Column("machine_id", sa.String(32), nullable=False),
        sa.Column("first_seen_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.Column("last_version", sa.String(32), nullable=False),
        sa.Column("last_user_count", sa.Integer(), nullable=False),
        sa.Column("seat", sa.String(8), nullable=False),
        sa.Column("retired_at", Timestamp, nullable=True),
        sa.CheckConstraint("seat IN ('granted', 'denied')", name=op.f("ck_machines_seat")),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["licences.id"],
            name=op.f("fk_machines_licence_id_licences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("licence_id", "machine_id", name=op.f("pk_machines")),
    )
    op.create_index(
        op.f("ix_machines_licence_id_last_seen_at"), "machines", ["licence_id", "last_seen_at"]
    )

    if op.get_bind().dialect.name == "postgresql":
        # Partitioned by day so retention drops whole partitions; the server
        # creates each day's partition ahead of time.
        op.execute(f"CREATE TABLE pings ({PING_COLUMNS}) PARTITION BY RANGE (received_at)")
        op.execute(
            "CREATE INDEX ix_pings_licence_id_received_at ON pings (licence_id, received_at)"
        )
    else:
        op.create_table(
            "pings",
            sa.Column("licence_id", sa.Uuid(), nullable=False),
            sa.Column("received_at", Timestamp, nullable=False),
            sa.Column("machine_id", sa.String(32), nullable=False),
            sa.Column("net_id", sa.String(16), nullable=False),
            sa.Column("product", sa.String(32), nullable=False),
            sa.Column("version", sa.String(32), nullable=False),
            sa.Column("channel", sa.String(16), nullable=False),
            sa.Column("user_count", sa.Integer(), nullable=False),
            sa.Column("signatures", Json, nullable=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("seat", sa.String(8), nullable=False),
        )
        op.create_index(
            op.f("ix_pings_licence_id_received_at"), "pings", ["licence_id", "received_at"]
        )

    op.create_table(
        "staff_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scopes", Json, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_tokens_token_hash")),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("detail", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_target_id"), "audit_log", ["target_id"])

    op.create_table(
        "day_keys",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_day_keys")),
    )


def downgrade() -> None:
    op.drop_table("day_keys")
    op.drop_table("audit_log")
    op.drop_table("staff_tokens")
    op.drop_table("pings")
    op.drop_table("machines")
    op.drop_table("licences")
