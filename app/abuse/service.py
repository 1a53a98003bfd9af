"""Abuse reports for staff: the one place the API and the CLI read and move them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.abuse.events import record_report_event
from app.abuse.models import AbuseReport, AbuseReportEvent, ReportKind, ReportStatus
from app.abuse.schemas import ReportChange, ReportDetail, ReportSort
from app.core import audit
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.events.models import EventType
from app.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from app.licences.models import Licence

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


def _query(wanted: ReportFilter) -> Select[AbuseReport, str, str]:
    query = select(AbuseReport, Licence.product, Licence.key_last4).join(
        Licence, Licence.id == AbuseReport.licence_id
    )
    if wanted.status:
        query = query.where(AbuseReport.status == wanted.status.value)
    if wanted.kind:
        query = query.where(AbuseReport.kind == wanted.kind.value)
    if wanted.product:
        query = query.where(Licence.product == wanted.product)
    if wanted.licence_id:
        query = query.where(AbuseReport.licence_id == wanted.licence_id)
    if wanted.since:
        query = query.where(AbuseReport.last_seen_at >= wanted.since)
    return query


def _sort_key(sort: ReportSort) -> Any:
    return AbuseReport.severity if sort is ReportSort.SEVERITY else AbuseReport.last_seen_at


def _after(sort: ReportSort, cursor: str) -> Any:
    cursor_sort, value, report_id = decode_cursor(cursor, 3)
    try:
        if cursor_sort != sort.value:
            raise ValueError(cursor_sort)
        key = int(value) if sort is ReportSort.SEVERITY else dt.datetime.fromisoformat(value)
        after = uuid.UUID(report_id)
    except (TypeError, ValueError) as error:
        raise InvalidInput("The cursor is not one this server issued") from error
    column = _sort_key(sort)
    return or_(column < key, and_(column == key, AbuseReport.id < after))


def _cursor(sort: ReportSort, report: AbuseReport) -> str:
    key = report.severity if sort is ReportSort.SEVERITY else report.last_seen_at.isoformat()
    return encode_cursor(sort.value, key, str(report.id))


async def list_reports(
    session: AsyncSession,
    wanted: ReportFilter,
    *,
    sort: ReportSort = ReportSort.SEVERITY,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[ReportView], str | None]:
    """Highest severity (or latest seen) first, by keyset: new reports never shift a page."""
    query = _query(wanted)
    if cursor:
        query = query.where(_after(sort, cursor))
    query = query.order_by(_sort_key(sort).desc(), AbuseReport.id.desc()).limit(limit + 1)
    rows = [
        ReportView(report, product, key_last4)
        for report, product, key_last4 in (await session.execute(query)).all()
    ]
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], _cursor(sort, rows[limit - 1].report)


async def _view(session: AsyncSession, report_id: uuid.UUID, *, lock: bool) -> ReportView:
    query = _query(ReportFilter()).where(AbuseReport.id == report_id)
    if lock:
        query = query.with_for_update(of=AbuseReport)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("No such abuse report")
    report, product, key_last4 = row
    return ReportView(report, product, key_last4)


async def report_events(session: AsyncSession, report: AbuseReport) -> list[AbuseReportEvent]:
    rows = await session.scalars(
        select(AbuseReportEvent)
        .where(
            AbuseReportEvent.licence_id == report.licence_id,
            AbuseReportEvent.report_id == report.id,
        )
        .order_by(AbuseReportEvent.seq)
    )
    return list(rows)


async def detail_of(session: AsyncSession, view: ReportView) -> ReportDetail:
    """A report with its evidence and its history."""
    events = await report_events(session, view.report)
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
    last_seq = await session.scalar(
        select(func.max(AbuseReportEvent.seq)).where(
            AbuseReportEvent.licence_id == report.licence_id,
            AbuseReportEvent.report_id == report.id,
        )
    )
    session.add(
        AbuseReportEvent(
            licence_id=report.licence_id,
            report_id=report.id,
            seq=(last_seq or 0) + 1,
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
