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
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth.models import StaffSession
from app.core.database import Database
from app.core.errors import NotFound
from app.core.settings import Settings
from app.ingest import repository as ingest
from app.licences.models import CustomerSession
from app.privacy import repository
from app.privacy.erasure import erase_licence_data
from app.privacy.inventory import TABLES as INVENTORY_TABLES
from app.privacy.tables import metadata
from app.privacy.usage import aggregate_days

# Pings are stamped when they arrive and committed moments later: a day is rolled up
# only once every batch that could still carry its pings has committed or failed.
ROLLUP_GRACE = dt.timedelta(minutes=10)
# On PostgreSQL, dropping a partition waits this long for its lock, then gives up
# until the next run, rather than queue every ping insert behind it.
PARTITION_LOCK_TIMEOUT = "2s"
# Rows deleted per transaction on SQLite, so the batch writer never waits long.
SQLITE_DELETE_BATCH = 2000
# The actor the audit log names when retention, not staff, erases a licence.
RETENTION_ACTOR = "retention"


def first_day_kept(now: dt.datetime, retention_days: int) -> dt.date:
    """The oldest UTC day that has not wholly ended more than `retention_days` ago."""
    return (now.astimezone(dt.UTC) - dt.timedelta(days=retention_days)).date()


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


async def _first_unrolled_day(session: AsyncSession, horizon: Horizon) -> dt.date:
    """The first day that needs a rollup: days before it are rolled up or need none."""
    latest = await ingest.latest_rollup_day(session)
    after_latest = latest + dt.timedelta(days=1) if latest is not None else dt.date.min
    return max(after_latest, horizon.rollups_kept_from)


async def roll_up(database: Database, horizon: Horizon) -> int:
    """Roll every ended day not yet rolled up into `daily_usage`; the days rolled up."""
    async with database.sessions() as session, session.begin():
        first = await _first_unrolled_day(session, horizon)
        oldest = await ingest.oldest_ping_day(session)
        if oldest is None:
            return 0
        start = max(first, oldest)
        # Only days that may hold pings are read: a server back after weeks (or a clock
        # moved years on) would otherwise read every day between, one by one.
        days = await ingest.ping_days(session, start, horizon.last_ended_day)
    for day in days:
        # One transaction per day, for all licences at once: a day is rolled up
        # wholly or not at all, so the latest rollup marks where the next run resumes.
        async with database.sessions() as session, session.begin():
            usage = await aggregate_days(session, day, day)
            if usage:
                await ingest.insert_rollups(session, [entry.as_row() for entry in usage])
    return max(0, (horizon.last_ended_day - start).days + 1)


async def pings_expire_before(database: Database, horizon: Horizon) -> dt.date:
    """Pings of days before this one may go: past their retention, and rolled up."""
    async with database.sessions() as session, session.begin():
        unrolled = await _first_unrolled_day(session, horizon)
    return min(horizon.pings_kept_from, unrolled)


async def drop_expired_partitions(database: Database, before: dt.date) -> int:
    """Drop whole day partitions older than `before`; never delete rows from a partition."""
    async with database.engine.connect() as connection:
        expired = sorted(
            name for day, name in (await ingest.ping_partitions(connection)).items() if day < before
        )
        await connection.rollback()
    for name in expired:
        async with database.engine.begin() as connection:
            await ingest.drop_ping_partition(connection, name, PARTITION_LOCK_TIMEOUT)
    return len(expired)


@dataclass(frozen=True)
class Expired:
    pings: int = 0
    partitions: int = 0


async def expire_pings(database: Database, horizon: Horizon) -> Expired:
    before = await pings_expire_before(database, horizon)
    if database.dialect == "postgresql":
        return Expired(partitions=await drop_expired_partitions(database, before))
    expired = await repository.expire_pings_before(
        database, before, sqlite_batch=SQLITE_DELETE_BATCH
    )
    return Expired(pings=expired)


async def expire_machines(database: Database, now: dt.datetime, settings: Settings) -> int:
    unseen_since = now - dt.timedelta(days=settings.machine_retention_days)
    return await repository.expire_machines_unseen_since(
        database, unseen_since, now, sqlite_batch=SQLITE_DELETE_BATCH
    )


async def expire_rollups(database: Database, horizon: Horizon) -> int:
    return await repository.expire_rollups_before(
        database, horizon.rollups_kept_from, sqlite_batch=SQLITE_DELETE_BATCH
    )


async def erase_ended_licences(database: Database, now: dt.datetime, settings: Settings) -> int:
    """Erase whole every licence ended (expired or revoked) longer than the licence
    retention: its use data, its reports, the licence, and every audit entry about it.
    One transaction per licence, so a run cut short leaves whole licences behind."""
    ended_before = now - dt.timedelta(days=settings.licence_retention_days)
    async with database.sessions() as session:
        ended = await repository.licences_ended_before(session, ended_before)
    for licence_id in ended:
        async with database.sessions() as session, session.begin():
            try:
                await erase_licence_data(
                    session, licence_id, delete_licence=True, actor=RETENTION_ACTOR, now=now
                )
            except NotFound:
                continue  # erased meanwhile by staff
            audit_log = INVENTORY_TABLES["audit_log"]
            assert audit_log.licence is not None
            await repository.delete_rows_about(
                session, metadata.tables["audit_log"], audit_log.licence, licence_id
            )
            await repository.request_rewrites(session, ["audit_log"], now)
    return len(ended)


async def expire_closed_reports(database: Database, now: dt.datetime, settings: Settings) -> int:
    closed_before = now - dt.timedelta(days=settings.closed_report_retention_days)
    return await repository.expire_closed_reports(
        database, closed_before, sqlite_batch=SQLITE_DELETE_BATCH
    )


async def expire_audit_entries(database: Database, now: dt.datetime, settings: Settings) -> int:
    before = now - dt.timedelta(days=settings.audit_retention_days)
    return await repository.expire_audit_entries(database, before, sqlite_batch=SQLITE_DELETE_BATCH)


async def expire_sessions(database: Database, now: dt.datetime, settings: Settings) -> int:
    """Staff and key holders' browser sessions that have ended (past their lifetime, or
    idle too long): each is refused when used, and goes here even if never used again."""
    staff_idle_since = now - dt.timedelta(seconds=settings.staff_session_idle_s)
    customer_idle_since = now - dt.timedelta(seconds=settings.customer_session_idle_s)
    staff = await repository.expire_sessions(
        database, StaffSession, now, staff_idle_since, sqlite_batch=SQLITE_DELETE_BATCH
    )
    customers = await repository.expire_sessions(
        database, CustomerSession, now, customer_idle_since, sqlite_batch=SQLITE_DELETE_BATCH
    )
    return staff + customers


async def expire_staff_tokens(database: Database, now: dt.datetime, settings: Settings) -> int:
    ended_before = now - dt.timedelta(days=settings.staff_token_retention_days)
    return await repository.expire_staff_tokens(
        database, ended_before, sqlite_batch=SQLITE_DELETE_BATCH
    )
