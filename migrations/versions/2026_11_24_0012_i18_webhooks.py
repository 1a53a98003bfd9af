"""Webhooks: the events outbox, endpoints, deliveries; licences' external_ref.

Revision ID: 0012_i18_webhooks
Revises: 0011_i17_customer_page
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_i18_webhooks"
down_revision: str | None = "0011_i17_customer_page"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("licences", sa.Column("external_ref", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_licences_external_ref"), "licences", ["external_ref"])
    op.create_table(
        "events",
        sa.Column("seq", Seq, autoincrement=True, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("licence_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_at", Timestamp, nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=True),
        sa.Column("planned_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_events_dedupe_key")),
    )
    op.create_index(
        op.f("ix_events_licence_id_occurred_at"), "events", ["licence_id", "occurred_at"]
    )
    op.create_index(op.f("ix_events_occurred_at"), "events", ["occurred_at"])
    op.create_index(
        "ix_events_unplanned",
        "events",
        ["seq"],
        postgresql_where=sa.text("planned_at IS NULL"),
        sqlite_where=sa.text("planned_at IS NULL"),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", Json, nullable=False),
        sa.Column("ordered", sa.Boolean(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("previous_secret", sa.String(length=64), nullable=True),
        sa.Column("previous_secret_until", Timestamp, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("failing_since", Timestamp, nullable=True),
        sa.Column("last_success_at", Timestamp, nullable=True),
        sa.Column("disabled_at", Timestamp, nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'disabled')", name=op.f("ck_webhook_endpoints_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_seq", Seq, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", Timestamp, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_attempt_at", Timestamp, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=32), nullable=True),
        sa.Column("last_latency_ms", sa.Integer(), nullable=True),
        sa.Column("delivered_at", Timestamp, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_seq"],
            ["events.seq"],
            name=op.f("fk_webhook_deliveries_event_seq_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("endpoint_id", "event_seq", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_status_next_attempt_at"),
        "webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(op.f("ix_webhook_deliveries_event_seq"), "webhook_deliveries", ["event_seq"])


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_event_seq"), table_name="webhook_deliveries")
    op.drop_index(
        op.f("ix_webhook_deliveries_status_next_attempt_at"), table_name="webhook_deliveries"
    )
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_events_unplanned", table_name="events")
    op.drop_index(op.f("ix_events_occurred_at"), table_name="events")
    op.drop_index(op.f("ix_events_licence_id_occurred_at"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_licences_external_ref"), table_name="licences")
    with op.batch_alter_table("licences") as batch:
        batch.drop_column("external_ref")
