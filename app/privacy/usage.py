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
from sqlalchemy.ext.asyncio import AsyncSession

from app.ingest import repository as ingest
from app.privacy import repository
from app.releases.catalog import parse_version


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


async def aggregate_days(
    session: AsyncSession,
    first_day: dt.date,
    last_day: dt.date,
    *,
    licence_id: uuid.UUID | None = None,
) -> list[DayUsage]:
    """Raw pings summed up per licence and UTC day, `first_day` to `last_day` inclusive."""
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
        for row in await repository.usage_by_day(
            session, first_day, last_day, licence_id=licence_id
        )
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
        for row in await ingest.rollups_of(session, licence_id, since=since, until=until)
    ]
    # Every day rolled up holds a row for each licence that pinged on it, so a day
    # after this licence's latest row is either without its pings or not rolled up.
    live_from = rolled_up[-1].day + dt.timedelta(days=1) if rolled_up else since
    if live_from > until:
        return rolled_up
    return rolled_up + await aggregate_days(session, live_from, until, licence_id=licence_id)
