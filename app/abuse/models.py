"""Abuse reports, their staff notes, and suspicions awaiting a second check."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, JsonDocument, UtcDateTime


class ReportKind(enum.StrEnum):
    MACHINES_OVER_LIMIT = "machines_over_limit"
    USERS_OVER_LIMIT = "users_over_limit"
    MACHINE_CHURN = "machine_churn"
    NETWORK_SPREAD = "network_spread"


class ReportStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


UNDER_REVIEW = (ReportStatus.OPEN.value, ReportStatus.ACKNOWLEDGED.value)
_UNDER_REVIEW_SQL = "status IN ('open', 'acknowledged')"


class AbuseReport(Base):
    """One finding about one licence, updated as its evidence grows."""

    __tablename__ = "abuse_reports"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('machines_over_limit', 'users_over_limit', 'machine_churn', "
            "'network_spread')",
            name="kind",
        ),
        CheckConstraint(
            "status IN ('open', 'acknowledged', 'resolved', 'dismissed')", name="status"
        ),
        # One report under review per licence and kind; closed ones stay as history.
        Index(
            "uq_abuse_reports_licence_id_kind_under_review",
            "licence_id",
            "kind",
            unique=True,
            postgresql_where=text(_UNDER_REVIEW_SQL),
            sqlite_where=text(_UNDER_REVIEW_SQL),
        ),
        # Staff address a report by its id alone.
        Index(None, "id"),
        Index(None, "severity", "id"),
        Index(None, "last_seen_at", "id"),
        # The queue: one status, sorted by severity or recency.
        Index(None, "status", "severity", "id"),
        Index(None, "status", "last_seen_at", "id"),
    )

    licence_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("licences.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[int] = mapped_column(Integer)
    # The latest measure, the largest one seen, and what the licence allows
    # (or the threshold, for churn and spread): all in the kind's own unit.
    figure: Mapped[int] = mapped_column(Integer)
    peak_figure: Mapped[int] = mapped_column(Integer)
    allowed: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    evidence: Mapped[dict[str, Any]] = mapped_column(JsonDocument)


class AbuseReportEvent(Base):
    """A report's history: its opening and every status change or note, by whom."""

    __tablename__ = "abuse_report_events"
    __table_args__ = (
        ForeignKeyConstraint(
            ["licence_id", "report_id"],
            ["abuse_reports.licence_id", "abuse_reports.id"],
            ondelete="CASCADE",
        ),
    )

    licence_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(2000))


class AbuseSuspect(Base):
    """A licence found over its machine limit once, waiting for a second check to confirm."""

    __tablename__ = "abuse_suspects"

    licence_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("licences.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    noted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    figure: Mapped[int] = mapped_column(Integer)
