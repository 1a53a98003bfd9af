"""The outbox table: one row per event, written with the change it tells of."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, JsonDocument, UtcDateTime


class EventType(enum.StrEnum):
    REPORT_OPENED = "report.opened"
    REPORT_CHANGED = "report.changed"
    LICENCE_CREATED = "licence.created"
    LICENCE_CHANGED = "licence.changed"
    LICENCE_EXPIRING = "licence.expiring"
    LICENCE_EXPIRED = "licence.expired"
    MACHINE_SEAT_DENIED = "machine.seat_denied"
    MACHINE_DEACTIVATED = "machine.deactivated"
    RELEASE_PUBLISHED = "release.published"
    RELEASE_ROLLOUT_CHANGED = "release.rollout_changed"
    # Sent to one endpoint when staff ask, never subscribed to.
    WEBHOOK_TEST = "webhook.test"


# What an endpoint may subscribe to.
SUBSCRIBABLE = tuple(kind for kind in EventType if kind is not EventType.WEBHOOK_TEST)

AutoId = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index(None, "licence_id", "occurred_at"),
        # The delivery worker's queue of events not yet planned: small, whatever the history.
        Index(
            "ix_events_unplanned",
            "seq",
            postgresql_where=text("planned_at IS NULL"),
            sqlite_where=text("planned_at IS NULL"),
        ),
        Index(None, "occurred_at"),
    )

    # The order events happened in; `id` names the event to receivers (webhook-id).
    seq: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(40))
    licence_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    # Events that must happen once (a notice per licence and day count) carry a key.
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # When the delivery worker made its deliveries; NULL while waiting for it.
    planned_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
