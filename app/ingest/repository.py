"""The SQL of the ping log: the batch's rows, and the daily partitions created ahead of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.ingest.models import pings

DAYS_AHEAD = 3


async def copy_pings(driver: Any, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """COPY the batch into `pings` on the asyncpg connection the writer holds."""
    await driver.copy_records_to_table("pings", records=rows, columns=columns)


async def count_pings(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(pings)) or 0)


async def insert_pings(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """The batch as one multi-row INSERT, where there is no COPY (SQLite)."""
    await connection.execute(insert(pings), rows)


def partition_name(day: dt.date) -> str:
    return f"pings_p{day:%Y%m%d}"


# An arbitrary constant naming "creating ping partitions" among advisory locks.
PARTITIONS_LOCK_ID = 0x70617274


async def ensure_ping_partitions(
    connection: AsyncConnection, today: dt.date, days_ahead: int = DAYS_AHEAD
) -> list[str]:
    """Create the partitions for today and the next days; a no-op on SQLite."""
    if connection.dialect.name != "postgresql":
        return []
    # Nodes starting together all get here at once, and CREATE TABLE IF NOT EXISTS is
    # no guard against a concurrent create ("already exists"): one creator at a time,
    # until the caller's transaction ends; the later ones then find the partitions.
    await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PARTITIONS_LOCK_ID})
    created = []
    for offset in range(days_ahead + 1):
        day = today + dt.timedelta(days=offset)
        name = partition_name(day)
        exists = await connection.scalar(text("SELECT to_regclass(:name)"), {"name": name})
        if exists is not None:
            continue
        await connection.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF pings "
                f"FOR VALUES FROM ('{day.isoformat()} 00:00:00+00') "
                f"TO ('{(day + dt.timedelta(days=1)).isoformat()} 00:00:00+00')"
            )
        )
        created.append(name)
    return created
