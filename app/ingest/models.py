"""The raw ping log: append-only, partitioned by day on PostgreSQL, expired by retention."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Uuid

from app.core.database import Base, JsonDocument, UtcDateTime

# No primary key: nothing ever updates or addresses a single ping, and every
# index costs the hot path. Rows are found by licence and time.
pings = Table(
    "pings",
    Base.metadata,
    Column("licence_id", Uuid, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("machine_id", String(32), nullable=False),
    Column("net_id", String(16), nullable=False),
    Column("product", String(32), nullable=False),
    Column("version", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("user_count", Integer, nullable=False),
    Column("signatures", JsonDocument, nullable=True),
    Column("status", String(16), nullable=False),
    Column("seat", String(8), nullable=False),
    Index(None, "licence_id", "received_at"),
)
