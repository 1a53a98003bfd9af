"""The SQL of abuse detection and reports, reading across machines and pings."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, distinct, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.abuse.models import (
    UNDER_REVIEW,
    AbuseReport,
    AbuseReportEvent,
    AbuseSuspect,
    ReportKind,
    ReportStatus,
)
from app.abuse.schemas import ReportSort
from app.core.database import dialect_insert
from app.core.pagination import CursorInt32, CursorMoment, decode_cursor, encode_cursor
from app.ingest.models import pings
from app.licences.models import Licence, Machine, seat_window
from app.licences.repository import seat_held

# -- suspicions ---------------------------------------------------------------


async def locked_suspect(
    session: AsyncSession, licence_id: uuid.UUID, kind: ReportKind
) -> AbuseSuspect | None:
    return await session.get(AbuseSuspect, (licence_id, kind.value), with_for_update=True)


async def drop_suspect(session: AsyncSession, suspect: AbuseSuspect) -> None:
    await session.delete(suspect)


async def note_suspect(
    session: AsyncSession,
    licence_id: uuid.UUID,
    kind: ReportKind,
    *,
    noted_at: dt.datetime,
    figure: int,
) -> None:
    """Note a first suspicion; another process that noted it first wins."""
    insert = dialect_insert(session.get_bind().dialect.name)
    await session.execute(
        insert(AbuseSuspect)
        .values(licence_id=licence_id, kind=kind.value, noted_at=noted_at, figure=figure)
        .on_conflict_do_nothing(index_elements=["licence_id", "kind"])
    )


async def suspected_licences(session: AsyncSession, kind: ReportKind) -> set[uuid.UUID]:
    return set(
        await session.scalars(
            select(AbuseSuspect.licence_id).where(AbuseSuspect.kind == kind.value)
        )
    )


# -- one licence's pings ------------------------------------------------------

_PING_MACHINE = and_(
    Machine.licence_id == pings.c.licence_id, Machine.machine_id == pings.c.machine_id
)


def _counted_pings(licence_id: uuid.UUID, since: dt.datetime) -> list[ColumnElement[bool]]:
    """Pings of the licence since `since`, from machines not retired."""
    return [
        pings.c.licence_id == licence_id,
        pings.c.received_at >= since,
        Machine.retired_at.is_(None),
    ]


async def machines_over_user_limit(
    session: AsyncSession, licence_id: uuid.UUID, since: dt.datetime, max_users: int
) -> Sequence[Any]:
    """Per machine over `max_users` since `since`: (machine_id, peak users, pings, first, last)."""
    return (
        await session.execute(
            select(
                pings.c.machine_id,
                func.max(pings.c.user_count),
                func.count(),
                func.min(pings.c.received_at),
                func.max(pings.c.received_at),
            )
            .join(Machine, _PING_MACHINE)
            .where(*_counted_pings(licence_id, since))
            .where(pings.c.user_count > max_users)
            .group_by(pings.c.machine_id)
        )
    ).all()


async def network_spread(
    session: AsyncSession, licence_id: uuid.UUID, day: dt.datetime
) -> tuple[int, Any, Any]:
    """(distinct networks, first ping, last ping) of the licence on the UTC day from `day`."""
    networks, first_seen_at, last_seen_at = (
        await session.execute(
            select(
                func.count(distinct(pings.c.net_id)),
                func.min(pings.c.received_at),
                func.max(pings.c.received_at),
            )
            .join(Machine, _PING_MACHINE)
            .where(*_in_day(licence_id, day))
        )
    ).one()
    return int(networks), first_seen_at, last_seen_at


async def machines_pinging_on(
    session: AsyncSession, licence_id: uuid.UUID, day: dt.datetime
) -> list[str]:
    return list(
        await session.scalars(
            select(pings.c.machine_id)
            .distinct()
            .join(Machine, _PING_MACHINE)
            .where(*_in_day(licence_id, day))
        )
    )


def _in_day(licence_id: uuid.UUID, day: dt.datetime) -> list[ColumnElement[bool]]:
    return [*_counted_pings(licence_id, day), pings.c.received_at < day + dt.timedelta(days=1)]


# -- one licence's machines ---------------------------------------------------


def _recent(licence_id: uuid.UUID, seen_after: dt.datetime) -> ColumnElement[bool]:
    return and_(
        Machine.licence_id == licence_id,
        Machine.retired_at.is_(None),
        Machine.last_seen_at > seen_after,
    )


async def recent_machine_figures(
    session: AsyncSession, licence_id: uuid.UUID, seen_after: dt.datetime
) -> tuple[int, Any, Any]:
    """(machines not retired seen after `seen_after`, earliest first sighting, latest sighting)."""
    count, first_seen_at, last_seen_at = (
        await session.execute(
            select(func.count(), func.min(Machine.first_seen_at), func.max(Machine.last_seen_at))
            .select_from(Machine)
            .where(_recent(licence_id, seen_after))
        )
    ).one()
    return int(count), first_seen_at, last_seen_at


async def latest_recent_machines(
    session: AsyncSession, licence_id: uuid.UUID, seen_after: dt.datetime, *, limit: int
) -> list[Machine]:
    return list(
        await session.scalars(
            select(Machine)
            .where(_recent(licence_id, seen_after))
            .order_by(Machine.last_seen_at.desc())
            .limit(limit)
        )
    )


# -- the sweep: licences worth a look -----------------------------------------


async def take_sweep_lock(session: AsyncSession, key: int) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        # SQLite: BEGIN IMMEDIATE has made this transaction the only writer.
        return True
    locked = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})
    return bool(locked)


async def over_machine_limit(session: AsyncSession, now: dt.datetime) -> set[uuid.UUID]:
    windows = await session.execute(
        select(Licence.activity_window_days, Licence.lease_minutes).distinct()
    )
    found: set[uuid.UUID] = set()
    # One grouped count per distinct seat window: few, and portable SQL.
    for window_days, lease_minutes in list(windows):
        window = seat_window(window_days, lease_minutes)
        rows = await session.scalars(
            select(Machine.licence_id)
            .join(Licence, Licence.id == Machine.licence_id)
            .where(
                Licence.activity_window_days == window_days,
                Licence.lease_minutes.is_(None)
                if lease_minutes is None
                else Licence.lease_minutes == lease_minutes,
                seat_held(now - window, now),
            )
            .group_by(Machine.licence_id, Licence.max_machines)
            .having(func.count() > Licence.max_machines)
        )
        found.update(rows)
    return found


async def over_user_limit(session: AsyncSession, seen_after: dt.datetime) -> set[uuid.UUID]:
    # The machines table holds each machine's latest count; reading it is far
    # cheaper than the ping log, which the judgement then reads per licence.
    rows = await session.scalars(
        select(Machine.licence_id)
        .distinct()
        .join(Licence, Licence.id == Machine.licence_id)
        .where(
            Licence.max_users.is_not(None),
            Machine.last_user_count > Licence.max_users,
            Machine.retired_at.is_(None),
            Machine.last_seen_at > seen_after,
        )
    )
    return set(rows)


async def churning(
    session: AsyncSession, seen_after: dt.datetime, min_machines: int
) -> set[uuid.UUID]:
    rows = await session.scalars(
        select(Machine.licence_id)
        .where(Machine.retired_at.is_(None), Machine.last_seen_at > seen_after)
        .group_by(Machine.licence_id)
        .having(func.count() > min_machines)
    )
    return set(rows)


async def spreading(session: AsyncSession, since: dt.datetime, min_networks: int) -> set[uuid.UUID]:
    rows = await session.scalars(
        select(pings.c.licence_id)
        .where(pings.c.received_at >= since)
        .group_by(pings.c.licence_id)
        .having(func.count(distinct(pings.c.net_id)) > min_networks)
    )
    return set(rows)


# -- reports -------------------------------------------------------------------

# A report with the licence facts staff read beside it.
ReportRow = tuple[AbuseReport, str, str]


async def count_open_reports(session: AsyncSession) -> int:
    open_reports = select(AbuseReport).where(AbuseReport.status == ReportStatus.OPEN.value)
    return int(await session.scalar(select(func.count()).select_from(open_reports.subquery())) or 0)


def _reports(
    *,
    status: ReportStatus | None = None,
    kind: ReportKind | None = None,
    product: str | None = None,
    licence_id: uuid.UUID | None = None,
    since: dt.datetime | None = None,
) -> Select[AbuseReport, str, str]:
    query = select(AbuseReport, Licence.product, Licence.key_last4).join(
        Licence, Licence.id == AbuseReport.licence_id
    )
    if status:
        query = query.where(AbuseReport.status == status.value)
    if kind:
        query = query.where(AbuseReport.kind == kind.value)
    if product:
        query = query.where(Licence.product == product)
    if licence_id:
        query = query.where(AbuseReport.licence_id == licence_id)
    if since:
        query = query.where(AbuseReport.last_seen_at >= since)
    return query


def _sort_key(sort: ReportSort) -> Any:
    return AbuseReport.severity if sort is ReportSort.SEVERITY else AbuseReport.last_seen_at


def _after(sort: ReportSort, cursor: str) -> Any:
    key: int | dt.datetime
    if sort is ReportSort.SEVERITY:
        _, key, after = decode_cursor(cursor, tuple[Literal["severity"], CursorInt32, uuid.UUID])
    else:
        _, key, after = decode_cursor(cursor, tuple[Literal["last_seen"], CursorMoment, uuid.UUID])
    column = _sort_key(sort)
    return or_(column < key, and_(column == key, AbuseReport.id < after))


def _cursor(sort: ReportSort, report: AbuseReport) -> str:
    key = report.severity if sort is ReportSort.SEVERITY else report.last_seen_at.isoformat()
    return encode_cursor(sort.value, key, str(report.id))


async def list_reports(
    session: AsyncSession,
    *,
    status: ReportStatus | None,
    kind: ReportKind | None,
    product: str | None,
    licence_id: uuid.UUID | None,
    since: dt.datetime | None,
    sort: ReportSort,
    cursor: str | None,
    limit: int,
) -> tuple[list[ReportRow], str | None]:
    """Highest severity (or latest seen) first, by keyset: new reports never shift a page."""
    query = _reports(status=status, kind=kind, product=product, licence_id=licence_id, since=since)
    if cursor:
        query = query.where(_after(sort, cursor))
    query = query.order_by(_sort_key(sort).desc(), AbuseReport.id.desc()).limit(limit + 1)
    rows: list[ReportRow] = [
        (report, product, key_last4)
        for report, product, key_last4 in (await session.execute(query)).all()
    ]
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], _cursor(sort, rows[limit - 1][0])


async def report_row(
    session: AsyncSession, report_id: uuid.UUID, *, lock: bool
) -> ReportRow | None:
    query = _reports().where(AbuseReport.id == report_id)
    if lock:
        query = query.with_for_update(of=AbuseReport)
    row = (await session.execute(query)).first()
    if row is None:
        return None
    report, product, key_last4 = row
    return report, product, key_last4


def _events_of(report: AbuseReport) -> list[ColumnElement[bool]]:
    return [
        AbuseReportEvent.licence_id == report.licence_id,
        AbuseReportEvent.report_id == report.id,
    ]


async def report_events(session: AsyncSession, report: AbuseReport) -> list[AbuseReportEvent]:
    rows = await session.scalars(
        select(AbuseReportEvent).where(*_events_of(report)).order_by(AbuseReportEvent.seq)
    )
    return list(rows)


async def next_event_seq(session: AsyncSession, report: AbuseReport) -> int:
    """The sequence number the report's next history event takes."""
    last_seq = await session.scalar(
        select(func.max(AbuseReportEvent.seq)).where(*_events_of(report))
    )
    return (last_seq or 0) + 1


async def report_under_review(
    session: AsyncSession, licence_id: uuid.UUID, kind: ReportKind
) -> AbuseReport | None:
    """The licence's report of this kind still under review, locked."""
    report: AbuseReport | None = await session.scalar(
        select(AbuseReport)
        .where(
            AbuseReport.licence_id == licence_id,
            AbuseReport.kind == kind.value,
            AbuseReport.status.in_(UNDER_REVIEW),
        )
        .with_for_update()
    )
    return report


async def last_closed_report(
    session: AsyncSession, licence_id: uuid.UUID, kind: ReportKind
) -> AbuseReport | None:
    report: AbuseReport | None = await session.scalar(
        select(AbuseReport)
        .where(
            AbuseReport.licence_id == licence_id,
            AbuseReport.kind == kind.value,
            AbuseReport.status.not_in(UNDER_REVIEW),
        )
        .order_by(AbuseReport.closed_at.desc())
        .limit(1)
    )
    return report


async def insert_report(
    session: AsyncSession, report: AbuseReport, first_event: AbuseReportEvent
) -> bool:
    """Insert a new report and its first event; False when another process opened one first.

    The savepoint keeps the caller's transaction usable after the refusal.
    """
    try:
        async with session.begin_nested():
            session.add(report)
            await session.flush()
            session.add(first_event)
    except IntegrityError:
        return False
    return True
