"""A licence's daily usage: rolled-up days from `daily_usage`, the others live from raw pings.

One aggregation (`aggregate_days`) serves both the rollup step of maintenance and
this reader, so a rolled-up day and a live one are counted alike.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, fields
from typing import Any

from packaging.version import Version
from sqlalchemy import Date, Select, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.core.database import JsonDocument
from app.ingest.models import DailyUsage, pings
from app.licences.models import Licence
from app.releases.catalog import parse_version


class UtcDay(FunctionElement[dt.date]):
    """The UTC calendar day of a timestamp, on both stores."""

    type = Date()
    name = "utc_day"
    inherit_cache = True


@compiles(UtcDay, "postgresql")
def _utc_day_postgresql(element: UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC')::date"


@compiles(UtcDay, "sqlite")
def _utc_day_sqlite(element: UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite holds UTC timestamps as naive text, which date() reads as they are.
    return f"date({compiler.process(element.clauses, **kw)})"


class DistinctValues(FunctionElement[Any]):
    """The distinct values of a column in a group, as a JSON list."""

    type = JsonDocument
    name = "distinct_values"
    inherit_cache = True


@compiles(DistinctValues, "postgresql")
def _distinct_values_postgresql(element: DistinctValues, compiler: SQLCompiler, **kw: Any) -> str:
    return f"jsonb_agg(DISTINCT {compiler.process(element.clauses, **kw)})"


@compiles(DistinctValues, "sqlite")
def _distinct_values_sqlite(element: DistinctValues, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array(DISTINCT {compiler.process(element.clauses, **kw)})"


@dataclass(frozen=True)
class DayUsage:
    licence_id: uuid.UUID
    day: dt.date
    pings: int
    machines: int
    networks: int
    peak_users: int
    versions: list[str]

    def as_row(self) -> dict[str, Any]:
        return {column.name: getattr(self, column.name) for column in fields(self)}


def _version_order(text: str) -> tuple[bool, Version, str]:
    parsed = parse_version(text)
    return (parsed is None, parsed or Version("0"), text)


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _usage_query(first_day: dt.date, last_day: dt.date) -> Select[Any]:
    day = UtcDay(pings.c.received_at)
    return (
        select(
            pings.c.licence_id,
            day.label("day"),
            func.count().label("pings"),
            func.count(distinct(pings.c.machine_id)).label("machines"),
            func.count(distinct(pings.c.net_id)).label("networks"),
            func.max(pings.c.user_count).label("peak_users"),
            DistinctValues(pings.c.version).label("versions"),
        )
        .where(
            pings.c.received_at >= _start(first_day),
            pings.c.received_at < _start(last_day + dt.timedelta(days=1)),
            # Pings of a licence deleted meanwhile are usage of nothing.
            pings.c.licence_id.in_(select(Licence.id)),
        )
        .group_by(pings.c.licence_id, day)
        .order_by(day, pings.c.licence_id)
    )


async def aggregate_days(
    session: AsyncSession,
    first_day: dt.date,
    last_day: dt.date,
    *,
    licence_id: uuid.UUID | None = None,
) -> list[DayUsage]:
    """Raw pings summed up per licence and UTC day, `first_day` to `last_day` inclusive."""
    query = _usage_query(first_day, last_day)
    if licence_id is not None:
        query = query.where(pings.c.licence_id == licence_id)
    return [
        DayUsage(
            licence_id=row.licence_id,
            day=row.day,
            pings=row.pings,
            machines=row.machines,
            networks=row.networks,
            peak_users=row.peak_users,
            versions=sorted(row.versions, key=_version_order),
        )
        for row in await session.execute(query)
    ]


async def daily_usage(
    session: AsyncSession, licence_id: uuid.UUID, *, since: dt.date, until: dt.date
) -> list[DayUsage]:
    """The licence's usage on each day from `since` to `until` inclusive, oldest first.

    Days without a ping are left out. A day the maintenance has rolled up is read from
    its rollup; the days after the licence's latest rollup (today, and days not yet
    rolled up) are counted live from the raw pings.
    """
    rolled_up = [
        DayUsage(**{column.name: getattr(row, column.name) for column in fields(DayUsage)})
        for row in await session.scalars(
            select(DailyUsage)
            .where(
                DailyUsage.licence_id == licence_id,
                DailyUsage.day >= since,
                DailyUsage.day <= until,
            )
            .order_by(DailyUsage.day)
        )
    ]
    # Every day rolled up holds a row for each licence that pinged on it, so a day
    # after this licence's latest row is either without its pings or not rolled up.
    live_from = rolled_up[-1].day + dt.timedelta(days=1) if rolled_up else since
    if live_from > until:
        return rolled_up
    return rolled_up + await aggregate_days(session, live_from, until, licence_id=licence_id)
