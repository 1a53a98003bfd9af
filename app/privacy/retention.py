"""Retention: raw pings rolled up into daily rows, then expired; machines and rollups expired.

Every step here is idempotent and safe to interrupt: each transaction leaves the
store in a state the next run continues from. The rules that keep the rollups true:
- a day is rolled up once it has ended (plus a grace for batches still committing),
  in one transaction for all licences, and a rollup once written is never rewritten;
- pings expire a whole UTC day at a time, and only days already rolled up (or past
  the rollup retention themselves) expire; so no rollup is made from a day whose
  pings are partly gone.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.database import Database, dialect_insert
from app.core.settings import Settings
from app.ingest.models import DailyUsage, pings
from app.licences.models import Machine
from app.privacy.usage import aggregate_days

# Pings are stamped when they arrive and committed moments later: a day is rolled up
# only once every batch that could still carry its pings has committed or failed.
ROLLUP_GRACE = dt.timedelta(minutes=10)
# Rows deleted per transaction on SQLite, so the batch writer never waits long.
SQLITE_DELETE_BATCH = 2000
# On PostgreSQL, dropping a partition waits this long for its lock, then gives up
# until the next run, rather than queue every ping insert behind it.
PARTITION_LOCK_TIMEOUT = "2s"
PARTITION_NAME = "pings_p%Y%m%d"


def first_day_kept(now: dt.datetime, retention_days: int) -> dt.date:
    """The oldest UTC day that has not wholly ended more than `retention_days` ago."""
    return (now.astimezone(dt.UTC) - dt.timedelta(days=retention_days)).date()


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@dataclass(frozen=True)
class Horizon:
    """The days each step works on, fixed once per run."""

    last_ended_day: dt.date
    pings_kept_from: dt.date
    rollups_kept_from: dt.date

    @classmethod
    def at(cls, now: dt.datetime, settings: Settings) -> Horizon:
        return cls(
            last_ended_day=(now.astimezone(dt.UTC) - ROLLUP_GRACE).date() - dt.timedelta(days=1),
            pings_kept_from=first_day_kept(now, settings.ping_retention_days),
            rollups_kept_from=first_day_kept(now, settings.rollup_retention_days),
        )


async def _rolled_up_through(session: AsyncSession) -> dt.date | None:
    latest: dt.date | None = await session.scalar(select(func.max(DailyUsage.day)))
    return latest


async def _first_unrolled_day(session: AsyncSession, horizon: Horizon) -> dt.date:
    """The first day that needs a rollup: days before it are rolled up or need none."""
    latest = await _rolled_up_through(session)
    after_latest = latest + dt.timedelta(days=1) if latest is not None else dt.date.min
    return max(after_latest, horizon.rollups_kept_from)


async def _oldest_ping_day(session: AsyncSession) -> dt.date | None:
    if session.get_bind().dialect.name == "postgresql":
        connection = await session.connection()
        days = await ping_partitions(connection)
        return min(days) if days else None
    oldest: dt.datetime | None = await session.scalar(select(func.min(pings.c.received_at)))
    return oldest.date() if oldest is not None else None


async def roll_up(database: Database, horizon: Horizon) -> int:
    """Roll every ended day not yet rolled up into `daily_usage`; the days rolled up."""
    async with database.sessions() as session, session.begin():
        first = await _first_unrolled_day(session, horizon)
        oldest = await _oldest_ping_day(session)
    if oldest is None:
        return 0
    day, rolled = max(first, oldest), 0
    while day <= horizon.last_ended_day:
        # One transaction per day, for all licences at once: a day is rolled up
        # wholly or not at all, so the latest rollup marks where the next run resumes.
        async with database.sessions() as session, session.begin():
            usage = await aggregate_days(session, day, day)
            if usage:
                insert = dialect_insert(database.dialect)(DailyUsage)
                await session.execute(
                    insert.on_conflict_do_nothing(index_elements=["licence_id", "day"]),
                    [entry.as_row() for entry in usage],
                )
        rolled += 1
        day += dt.timedelta(days=1)
    return rolled


async def pings_expire_before(database: Database, horizon: Horizon) -> dt.date:
    """Pings of days before this one may go: past their retention, and rolled up."""
    async with database.sessions() as session, session.begin():
        unrolled = await _first_unrolled_day(session, horizon)
    return min(horizon.pings_kept_from, unrolled)


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


async def drop_expired_partitions(database: Database, before: dt.date) -> int:
    """Drop whole day partitions older than `before`; never delete rows from a partition."""
    async with database.engine.connect() as connection:
        expired = sorted(
            name for day, name in (await ping_partitions(connection)).items() if day < before
        )
        await connection.rollback()
    for name in expired:
        async with database.engine.begin() as connection:
            await connection.execute(text(f"SET LOCAL lock_timeout = '{PARTITION_LOCK_TIMEOUT}'"))
            await connection.execute(text(f"ALTER TABLE pings DETACH PARTITION {name}"))
            await connection.execute(text(f"DROP TABLE {name}"))
    return len(expired)


async def delete_expired(database: Database, table: Table, expired: ColumnElement[bool]) -> int:
    """Delete the rows matching `expired`: in bounded batches on SQLite, whose single
    writer must not be held long; in one statement on PostgreSQL."""
    if database.dialect == "postgresql":
        async with database.engine.begin() as connection:
            return int((await connection.execute(delete(table).where(expired))).rowcount)
    rowid: ColumnElement[int] = literal_column("rowid")
    batch = select(rowid).select_from(table).where(expired).limit(SQLITE_DELETE_BATCH)
    deleted = 0
    while True:
        async with database.engine.begin() as connection:
            # Expired rows are overwritten with zeros, not left in the file's free pages.
            await connection.execute(text("PRAGMA secure_delete = ON"))
            result = await connection.execute(delete(table).where(rowid.in_(batch)))
        deleted += int(result.rowcount)
        if result.rowcount < SQLITE_DELETE_BATCH:
            return deleted


@dataclass(frozen=True)
class Expired:
    pings: int = 0
    partitions: int = 0


async def expire_pings(database: Database, horizon: Horizon) -> Expired:
    before = await pings_expire_before(database, horizon)
    if database.dialect == "postgresql":
        return Expired(partitions=await drop_expired_partitions(database, before))
    return Expired(
        pings=await delete_expired(database, pings, pings.c.received_at < _start(before))
    )


async def expire_machines(database: Database, now: dt.datetime, settings: Settings) -> int:
    unseen_since = now - dt.timedelta(days=settings.machine_retention_days)
    table = Machine.__table__
    assert isinstance(table, Table)
    # A machine activated offline never pings: it is kept while its licence file runs.
    unused = and_(
        table.c.last_seen_at < unseen_since,
        or_(table.c.offline_until.is_(None), table.c.offline_until < now),
    )
    return await delete_expired(database, table, unused)


async def expire_rollups(database: Database, horizon: Horizon) -> int:
    table = DailyUsage.__table__
    assert isinstance(table, Table)
    return await delete_expired(database, table, table.c.day < horizon.rollups_kept_from)
