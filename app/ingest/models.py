"""The raw ping log: append-only, partitioned by day on PostgreSQL, expired by retention."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, String, Table, Uuid
from sqlalchemy.orm import Mapped, mapped_column

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


class DailyUsage(Base):
    """What remains of a licence's pings once they expire: one row per licence and UTC day.

    Aggregates only: counts of distinct machines and networks, never which ones.
    """

    __tablename__ = "daily_usage"

    licence_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("licences.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    pings: Mapped[int] = mapped_column(Integer)
    machines: Mapped[int] = mapped_column(Integer)
    networks: Mapped[int] = mapped_column(Integer)
    peak_users: Mapped[int] = mapped_column(Integer)
    versions: Mapped[list[str]] = mapped_column(JsonDocument)
