"""Claiming a job's run for one period: one statement, so two nodes never both win."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import dialect_insert
from app.core.jobs.models import JobRun

# Timers on different nodes drift apart by a little each period: a run a tenth of a
# period early still counts as due, or the job would skip whole periods.
EARLY_SHARE = 0.1


async def claim_run(engine: AsyncEngine, job: str, now: dt.datetime, period_s: float) -> bool:
    """True to the one caller that starts `job` this period; it is recorded as started now."""
    due_before = now - dt.timedelta(seconds=period_s * (1 - EARLY_SHARE))
    statement = dialect_insert(engine.dialect.name)(JobRun).values(job=job, started_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=["job"],
        set_={"started_at": statement.excluded.started_at},
        where=JobRun.started_at <= due_before,
    ).returning(JobRun.job)
    async with engine.begin() as connection:
        return (await connection.execute(statement)).first() is not None
