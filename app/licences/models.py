"""Licences and the machines that use them."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, JsonDocument, UtcDateTime


class LicenceStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class EffectiveStatus(enum.StrEnum):
    """The status staff are shown and filter by: a stored `active` past its expiry is expired."""

    ACTIVE = "active"
    EXPIRED = "expired"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


def effective_status(
    status: LicenceStatus, expires_at: dt.datetime | None, now: dt.datetime
) -> EffectiveStatus:
    """Suspended and revoked stand as they are; an active licence expires at its `expires_at`."""
    if status is LicenceStatus.ACTIVE and expires_at is not None and expires_at <= now:
        return EffectiveStatus.EXPIRED
    return EffectiveStatus(status.value)


class Overage(enum.StrEnum):
    REPORT = "report"
    DENY = "deny"


class Seat(enum.StrEnum):
    GRANTED = "granted"
    DENIED = "denied"


def seat_window(activity_window_days: int, lease_minutes: int | None) -> dt.timedelta:
    """How long after its last ping a machine still holds its seat: a floating licence's
    lease, else the licence's activity window."""
    if lease_minutes is not None:
        return dt.timedelta(minutes=lease_minutes)
    return dt.timedelta(days=activity_window_days)


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
    key_last4: Mapped[str] = mapped_column(String(4))
    max_machines: Mapped[int] = mapped_column(Integer)
    max_users: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    updates_until: Mapped[dt.date | None] = mapped_column(Date)
    entitlements: Mapped[list[str]] = mapped_column(JsonDocument)
    overage: Mapped[str] = mapped_column(String(8))
    activity_window_days: Mapped[int] = mapped_column(Integer)
    # The expiry of a trial is set at its first seat, this many days on.
    trial_days: Mapped[int | None] = mapped_column(Integer)
    # After expiry the product may keep working this many days (the verdict's grace_until).
    grace_days: Mapped[int | None] = mapped_column(Integer)
    # Set on a floating licence: a seat is a lease that lapses unless renewed this often.
    lease_minutes: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    # The vendor's own reference (a CRM account, an order): opaque to us, in every event.
    external_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    @property
    def floating(self) -> bool:
        return self.lease_minutes is not None

    @property
    def seat_window(self) -> dt.timedelta:
        return seat_window(self.activity_window_days, self.lease_minutes)

    def status_at(self, now: dt.datetime) -> EffectiveStatus:
        return effective_status(LicenceStatus(self.status), self.expires_at, now)


class LicenceKey(Base):
    """The licence a key opens, found by the key's HMAC. Kept apart from `licences` so
    that keys stay unique when licences are spread over shards by their id
    (docs/scaling.md): this small table is then a reference table on every node."""

    __tablename__ = "licence_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    licence_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("licences.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class LicenceChanges(Base):
    """One row counting licence changes: on an embedded store, where no NOTIFY reaches
    other processes, each server polls it to learn that its cache is out of date."""

    __tablename__ = "licence_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    counter: Mapped[int] = mapped_column(BigInteger)


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
    # Activated offline: the seat is held until the licence file ends, pings or not.
    offline_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class CustomerSession(Base):
    """A key holder signed in to the /my/ page, known to the server by a hash of its cookie."""

    __tablename__ = "customer_sessions"

    # SHA-256 of the cookie's value: a copy of the table opens no session.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Deleting or erasing the licence ends its sessions.
    licence_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("licences.id", ondelete="CASCADE"), index=True
    )
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
