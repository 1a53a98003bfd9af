"""The maintenance runner: each step idempotent and safe to interrupt.

Runs inside every server (hourly) and as `callhome maintain` for cron; on
PostgreSQL an advisory lock lets exactly one process run it at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.clock import Clock
from app.core.database import Database
from app.core.pseudonyms import destroy_expired_day_keys
from app.ingest.partitions import ensure_ping_partitions

logger = logging.getLogger("callhome.maintenance")

# An arbitrary constant naming "the maintenance run" among advisory locks.
MAINTENANCE_LOCK_ID = 0x63616C6C


@dataclass(frozen=True)
class MaintenanceReport:
    ran: bool
    day_keys_destroyed: int = 0
    partitions_created: int = 0


@contextlib.asynccontextmanager
async def exclusive(engine: AsyncEngine, lock_id: int) -> AsyncIterator[bool]:
    """Yield True to the one process holding the advisory lock, False to the others."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    async with engine.connect() as connection:
        held = bool(
            await connection.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id})
        )
        try:
            yield held
        finally:
            if held:
                await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
            await connection.commit()


async def _partitions(connection: AsyncConnection, now: dt.datetime) -> int:
    return len(await ensure_ping_partitions(connection, now.date()))


async def run_maintenance(database: Database, now: dt.datetime) -> MaintenanceReport:
    async with exclusive(database.engine, MAINTENANCE_LOCK_ID) as held:
        if not held:
            return MaintenanceReport(ran=False)
        async with database.engine.begin() as connection:
            created = await _partitions(connection, now)
        async with database.sessions() as session, session.begin():
            destroyed = await destroy_expired_day_keys(session, now)
    return MaintenanceReport(ran=True, day_keys_destroyed=destroyed, partitions_created=created)


async def maintain_forever(database: Database, clock: Clock, interval_s: float) -> None:
    """The in-server loop; a failed run is logged and tried again next time."""
    while True:
        try:
            report = await run_maintenance(database, clock.now())
            if report.ran:
                logger.info(
                    "maintenance: %d day keys destroyed, %d partitions created",
                    report.day_keys_destroyed,
                    report.partitions_created,
                )
        except Exception:
            logger.exception("maintenance run failed")
        await asyncio.sleep(interval_s)
