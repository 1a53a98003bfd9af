"""The maintenance runner: each step idempotent and safe to interrupt.

Runs inside every server (hourly) and as `callhome maintain` for cron; on
PostgreSQL an advisory lock lets exactly one process run it at a time, and in the
servers a claimed period (app/core/jobs/) makes it one run per hour across all nodes. The steps:
partitions ahead, rollups, ping expiry (app/privacy/retention.py), machine and
rollup expiry, ended licences erased, closed reports, audit entries, ended staff
tokens and ended browser sessions expired, day keys destroyed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import asdict, dataclass

from app.core.clock import Clock
from app.core.database import Database
from app.core.day_keys_repository import rewrite_day_keys
from app.core.jobs.repository import claim_run
from app.core.pseudonyms import destroy_expired_day_keys
from app.core.settings import Settings
from app.ingest.repository import ensure_ping_partitions
from app.privacy import repository, retention
from app.privacy.rewrite import Rewrites, rewrite_erased

logger = logging.getLogger("callhome.maintenance")

# An arbitrary constant naming "the maintenance run" among advisory locks.
MAINTENANCE_LOCK_ID = 0x63616C6C
MAINTENANCE_JOB = "maintenance"
# Start-up creates the partitions ahead itself; the other steps can wait this long.
FIRST_RUN_DELAY_S = 60.0


@dataclass(frozen=True)
class MaintenanceReport:
    """What one run did, in counts: the log line carries these and nothing else."""

    ran: bool
    partitions_created: int = 0
    days_rolled_up: int = 0
    pings_expired: int = 0
    partitions_dropped: int = 0
    machines_expired: int = 0
    rollups_expired: int = 0
    licences_erased: int = 0
    closed_reports_expired: int = 0
    audit_entries_expired: int = 0
    staff_tokens_expired: int = 0
    sessions_expired: int = 0
    relations_rewritten: int = 0
    rewrites_pending: int = 0
    day_keys_destroyed: int = 0

    def summary(self) -> str:
        counts = {name: value for name, value in asdict(self).items() if name != "ran"}
        return ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in counts.items())


async def create_partitions_ahead(database: Database, now: dt.datetime) -> int:
    """The ping partitions of today and the coming days (PostgreSQL); how many were new."""
    async with database.engine.begin() as connection:
        return len(await ensure_ping_partitions(connection, now.date()))


async def _destroy_day_keys(database: Database, now: dt.datetime) -> int:
    """Delete the expired day keys, then make their bytes leave the store's files:
    SQLite zeroes them in place and empties its write-ahead log; PostgreSQL writes the
    table anew, since a deleted row otherwise lingers in its page until reused. Every
    run does it, so a run that was cut short is made good by the next."""
    async with database.sessions() as session, session.begin():
        destroyed = await destroy_expired_day_keys(session, now)
    if database.dialect == "postgresql":
        await rewrite_day_keys(database.engine)
    else:
        await repository.checkpoint_wal(database)
    return destroyed


async def run_maintenance(
    database: Database, settings: Settings, now: dt.datetime
) -> MaintenanceReport:
    """One run of every step, in an order that matters: a day is rolled up before
    its pings may expire."""
    async with repository.exclusive(database.engine, MAINTENANCE_LOCK_ID) as held:
        if not held:
            return MaintenanceReport(ran=False)
        created = await create_partitions_ahead(database, now)
        horizon = retention.Horizon.at(now, settings)
        rolled = await retention.roll_up(database, horizon)
        expired = await retention.expire_pings(database, horizon)
        expiry = dict(
            machines_expired=await retention.expire_machines(database, now, settings),
            rollups_expired=await retention.expire_rollups(database, horizon),
            licences_erased=await retention.erase_ended_licences(database, now, settings),
            closed_reports_expired=await retention.expire_closed_reports(database, now, settings),
            audit_entries_expired=await retention.expire_audit_entries(database, now, settings),
            staff_tokens_expired=await retention.expire_staff_tokens(database, now, settings),
            sessions_expired=await retention.expire_sessions(database, now, settings),
        )
        rewrites = (
            await rewrite_erased(database.engine, settings, horizon.last_ended_day)
            if database.dialect == "postgresql"
            else Rewrites()
        )
        return MaintenanceReport(
            ran=True,
            partitions_created=created,
            days_rolled_up=rolled,
            pings_expired=expired.pings,
            partitions_dropped=expired.partitions,
            **expiry,
            relations_rewritten=rewrites.done,
            rewrites_pending=rewrites.pending,
            # Last: on SQLite its checkpoint also empties the WAL of every step's deletions.
            day_keys_destroyed=await _destroy_day_keys(database, now),
        )


async def maintain_forever(database: Database, settings: Settings, clock: Clock) -> None:
    """The in-server loop: first a little after start-up, so a starting server takes its
    first pings without waiting on the steps' writes; then every interval. A failed run
    is logged and tried again next time."""
    delay_s = min(FIRST_RUN_DELAY_S, settings.maintenance_interval_s)
    while True:
        await asyncio.sleep(delay_s)
        delay_s = settings.maintenance_interval_s
        try:
            now = clock.now()
            # Every node wakes each interval; the first to claim the period runs it.
            if not await claim_run(database.engine, MAINTENANCE_JOB, now, delay_s):
                continue
            report = await run_maintenance(database, settings, now)
            if report.ran:
                logger.info("maintenance: %s", report.summary())
        except Exception as error:
            # The type only: a store error's message may quote a statement.
            logger.warning("maintenance run failed: %s", type(error).__name__)
