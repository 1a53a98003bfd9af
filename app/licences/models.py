"""Licences and the machines that use them."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, JsonDocument, UtcDateTime


class LicenceStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class Overage(enum.StrEnum):
    REPORT = "report"
    DENY = "deny"


class Seat(enum.StrEnum):
    GRANTED = "granted"
    DENIED = "denied"


class Licence(Base):
    __tablename__ = "licences"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended', 'revoked')", name="status"),
        CheckConstraint("overage IN ('report', 'deny')", name="overage"),
        CheckConstraint("max_machines >= 1", name="max_machines"),
        Index(None, "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    product: Mapped[str] = mapped_column(String(32), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_last4: Mapped[str] = mapped_column(String(4))
    max_machines: Mapped[int] = mapped_column(Integer)
    max_users: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    updates_until: Mapped[dt.date | None] = mapped_column(Date)
    entitlements: Mapped[list[str]] = mapped_column(JsonDocument)
    overage: Mapped[str] = mapped_column(String(8))
    activity_window_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    # The vendor's own reference (a CRM account, an order): opaque to us, in every event.
    external_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Machine(Base):
    """One installation of a licence, known only by its licence-scoped pseudonym."""

    __tablename__ = "machines"
    __table_args__ = (
        CheckConstraint("seat IN ('granted', 'denied')", name="seat"),
        Index(None, "licence_id", "last_seen_at"),
    )

    licence_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("licences.id", ondelete="CASCADE"), primary_key=True
    )
    machine_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_version: Mapped[str] = mapped_column(String(32))
    last_user_count: Mapped[int] = mapped_column(Integer)
    seat: Mapped[str] = mapped_column(String(8))
    retired_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
