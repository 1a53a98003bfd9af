"""The SQL of abuse detection and reports, reading across machines and pings."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, distinct, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.abuse.models import AbuseReport, AbuseSuspect, ReportKind, ReportStatus
from app.core.database import dialect_insert
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


async def count_open_reports(session: AsyncSession) -> int:
    open_reports = select(AbuseReport).where(AbuseReport.status == ReportStatus.OPEN.value)
    return int(await session.scalar(select(func.count()).select_from(open_reports.subquery())) or 0)
