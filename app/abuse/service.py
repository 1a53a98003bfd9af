"""Abuse reports for staff: the one place the API and the CLI read and move them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.abuse import repository
from app.abuse.events import record_report_event
from app.abuse.models import AbuseReport, AbuseReportEvent, ReportKind, ReportStatus
from app.abuse.schemas import ReportChange, ReportDetail, ReportSort
from app.core import audit
from app.core.errors import Conflict, NotFound
from app.core.events.models import EventType
from app.core.pagination import DEFAULT_LIMIT

_NEXT_STATUSES = {
    ReportStatus.OPEN: {ReportStatus.ACKNOWLEDGED, ReportStatus.RESOLVED, ReportStatus.DISMISSED},
    ReportStatus.ACKNOWLEDGED: {ReportStatus.RESOLVED, ReportStatus.DISMISSED},
    ReportStatus.RESOLVED: set(),
    ReportStatus.DISMISSED: set(),
}
_CLOSED = (ReportStatus.RESOLVED, ReportStatus.DISMISSED)


def next_statuses(current: ReportStatus) -> list[ReportStatus]:
    """Where a report in `current` may move, in lifecycle order (none once closed)."""
    return [status for status in ReportStatus if status in _NEXT_STATUSES[current]]


@dataclass(frozen=True)
class ReportFilter:
    status: ReportStatus | None = None
    kind: ReportKind | None = None
    product: str | None = None
    licence_id: uuid.UUID | None = None
    since: dt.datetime | None = None


@dataclass(frozen=True)
class ReportView:
    """A report with the licence facts staff read beside it."""

    report: AbuseReport
    product: str
    key_last4: str

    def document(self) -> dict[str, Any]:
        columns = AbuseReport.__table__.columns.keys()
        return {name: getattr(self.report, name) for name in columns} | {"product": self.product}


async def list_reports(
    session: AsyncSession,
    wanted: ReportFilter,
    *,
    sort: ReportSort = ReportSort.SEVERITY,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[ReportView], str | None]:
    """Highest severity (or latest seen) first, by keyset: new reports never shift a page."""
    rows, next_cursor = await repository.list_reports(
        session,
        status=wanted.status,
        kind=wanted.kind,
        product=wanted.product,
        licence_id=wanted.licence_id,
        since=wanted.since,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    return [ReportView(*row) for row in rows], next_cursor


async def _view(session: AsyncSession, report_id: uuid.UUID, *, lock: bool) -> ReportView:
    row = await repository.report_row(session, report_id, lock=lock)
    if row is None:
        raise NotFound("No such abuse report")
    return ReportView(*row)


async def detail_of(session: AsyncSession, view: ReportView) -> ReportDetail:
    """A report with its evidence and its history."""
    events = await repository.report_events(session, view.report)
    return ReportDetail.model_validate(view.document() | {"events": events})


async def get_report(session: AsyncSession, report_id: uuid.UUID) -> ReportView:
    return await _view(session, report_id, lock=False)


async def change_report(
    session: AsyncSession,
    report_id: uuid.UUID,
    change: ReportChange,
    *,
    actor: str,
    now: dt.datetime,
) -> ReportView:
    """Move a report along its lifecycle, or only add a note; both land in its history."""
    view = await _view(session, report_id, lock=True)
    report = view.report
    current = ReportStatus(report.status)
    target = change.status or current
    if change.status is not None and change.status not in _NEXT_STATUSES[current]:
        raise Conflict(f"An {current.value} report cannot become {change.status.value}")
    session.add(
        AbuseReportEvent(
            licence_id=report.licence_id,
            report_id=report.id,
            seq=await repository.next_event_seq(session, report),
            at=now,
            actor=actor,
            from_status=current.value,
            to_status=target.value,
            note=change.note,
        )
    )
    report.status = target.value
    report.updated_at = now
    if target in _CLOSED and report.closed_at is None:
        report.closed_at = now
    await audit.record(
        session,
        actor=actor,
        action=f"abuse_report.{target.value if change.status else 'note'}",
        target_type="abuse_report",
        target_id=str(report.id),
        at=now,
        # The note stays in the report's history: free text has no place in the log.
        detail={
            "licence_id": str(report.licence_id),
            "kind": report.kind,
            "from": current.value,
            "to": target.value,
        },
    )
    if target is not current:
        await record_report_event(
            session, EventType.REPORT_CHANGED, report, at=now, change="status"
        )
    await session.flush()
    return view


CSV_COLUMNS = (
    "id",
    "licence_id",
    "product",
    "key_last4",
    "kind",
    "status",
    "severity",
    "figure",
    "peak_figure",
    "allowed",
    "first_seen_at",
    "last_seen_at",
    "opened_at",
    "closed_at",
    "machines",
)
EXPORT_PAGE = 500


def _csv_cell(value: object) -> str:
    text = value.isoformat() if isinstance(value, dt.datetime) else str(value)
    # A cell a spreadsheet would run as a formula is written as text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


async def export_csv(session: AsyncSession, wanted: ReportFilter, *, sort: ReportSort) -> str:
    """The filtered list as CSV, header first, read page by page."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    cursor: str | None = None
    while True:
        views, cursor = await list_reports(
            session, wanted, sort=sort, cursor=cursor, limit=EXPORT_PAGE
        )
        for view in views:
            row = view.document() | {"key_last4": view.key_last4, "closed_at": ""}
            if view.report.closed_at is not None:
                row["closed_at"] = view.report.closed_at
            row["machines"] = " ".join(
                entry["machine"] for entry in view.report.evidence.get("machines", [])
            )
            writer.writerow([_csv_cell(row[name]) for name in CSV_COLUMNS])
        if cursor is None:
            return buffer.getvalue()
