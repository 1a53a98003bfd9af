"""The SQL of the ping log and its daily rollups: the batch's rows, and the day partitions."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.clock import utc_midnight
from app.core.database import dialect_insert
from app.core.json import dumps
from app.ingest.models import DailyUsage, pings
from app.licences import repository as licences

DAYS_AHEAD = 3


# Every column of `pings` a batch writes, with its PostgreSQL type, in the order bound.
PING_COLUMN_TYPES = {
    "licence_id": "uuid",
    "received_at": "timestamptz",
    "machine_id": "varchar",
    "net_id": "varchar",
    "product": "varchar",
    "version": "varchar",
    "channel": "varchar",
    "user_count": "int",
    "signatures": "jsonb",
    "status": "varchar",
    "seat": "varchar",
}


def _postgresql_batch_statement() -> str:
    """The pings' INSERT and the machines' upsert as one statement: one round trip and
    no BEGIN or COMMIT of its own, atomic as any single statement is. Each is bound as
    one JSON document: encoding a batch's values one by one as arrays costs the writer
    more than PostgreSQL takes to read them from JSON."""
    columns = ", ".join(PING_COLUMN_TYPES)
    typed = ", ".join(f"{column} {kind}" for column, kind in PING_COLUMN_TYPES.items())
    return (
        f"WITH stored AS (INSERT INTO pings ({columns}) "
        f"SELECT {columns} FROM json_to_recordset($1::json) AS batch ({typed}))"
        + licences.postgresql_sightings_upsert(parameter=2)
    )


POSTGRESQL_BATCH = _postgresql_batch_statement()


async def store_batch_postgresql(
    driver: Any, rows: Sequence[dict[str, Any]], sightings: Sequence[licences.Sighting]
) -> None:
    """Store the batch's ping rows and record its machines' sightings, on the asyncpg
    connection the writer holds, outside any transaction."""
    await driver.execute(
        POSTGRESQL_BATCH, dumps(rows).decode(), licences.sightings_document(sightings)
    )


async def count_pings(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(pings)) or 0)


async def insert_pings(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """The batch as one multi-row INSERT, where there is no COPY (SQLite)."""
    await connection.execute(insert(pings), rows)


PARTITION_NAME = "pings_p%Y%m%d"


def partition_name(day: dt.date) -> str:
    return day.strftime(PARTITION_NAME)


async def ping_partitions(connection: AsyncConnection) -> dict[dt.date, str]:
    """The day partitions of `pings` on PostgreSQL, by day."""
    names = await connection.scalars(
        text(
            "SELECT child.relname FROM pg_inherits "
            "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = 'pings'::regclass"
        )
    )
    return {
        dt.datetime.strptime(name, PARTITION_NAME).date(): name
        for name in names
        if re.fullmatch(r"pings_p\d{8}", name)
    }


async def drop_ping_partition(connection: AsyncConnection, name: str, lock_timeout: str) -> None:
    """Detach and drop one day partition, waiting at most `lock_timeout` for its lock."""
    await connection.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
    await connection.execute(text(f"ALTER TABLE pings DETACH PARTITION {name}"))
    await connection.execute(text(f"DROP TABLE {name}"))


async def oldest_ping_day(session: AsyncSession) -> dt.date | None:
    """The UTC day of the oldest ping held: on PostgreSQL its oldest partition's."""
    if session.get_bind().dialect.name == "postgresql":
        connection = await session.connection()
        days = await ping_partitions(connection)
        return min(days) if days else None
    oldest: dt.datetime | None = await session.scalar(select(func.min(pings.c.received_at)))
    return oldest.date() if oldest is not None else None


async def ping_days(session: AsyncSession, first: dt.date, last: dt.date) -> list[dt.date]:
    """The UTC days from `first` to `last` that may hold pings, in order: on PostgreSQL
    those with a partition (free to list), on SQLite those with a ping."""
    if session.get_bind().dialect.name == "postgresql":
        partitions = await ping_partitions(await session.connection())
        return sorted(day for day in partitions if first <= day <= last)
    day = func.date(pings.c.received_at)
    held = await session.scalars(
        select(day)
        .where(
            pings.c.received_at >= utc_midnight(first),
            pings.c.received_at < utc_midnight(last + dt.timedelta(days=1)),
        )
        .group_by(day)
        .order_by(day)
    )
    return [dt.date.fromisoformat(text) for text in held]


# -- daily rollups --------------------------------------------------------------


async def latest_rollup_day(session: AsyncSession) -> dt.date | None:
    latest: dt.date | None = await session.scalar(select(func.max(DailyUsage.day)))
    return latest


async def insert_rollups(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert a day's rollups; a rollup once written is never rewritten."""
    insert_rollup = dialect_insert(session.get_bind().dialect.name)(DailyUsage)
    await session.execute(
        insert_rollup.on_conflict_do_nothing(index_elements=["licence_id", "day"]), rows
    )


async def rollups_of(
    session: AsyncSession, licence_id: uuid.UUID, *, since: dt.date, until: dt.date
) -> list[DailyUsage]:
    """The licence's rollups from `since` to `until` inclusive, oldest first."""
    return list(
        await session.scalars(
            select(DailyUsage)
            .where(
                DailyUsage.licence_id == licence_id,
                DailyUsage.day >= since,
                DailyUsage.day <= until,
            )
            .order_by(DailyUsage.day)
        )
    )


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
