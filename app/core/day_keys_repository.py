"""The SQL of the day keys: each day's key made once for every process, old keys destroyed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.database import dialect_insert, wait_for_horizon
from app.core.models import DayKey

# The rewrite of day_keys waits at most this long for its lock, then tries again at
# the next maintenance run: a process loading its day's key never queues behind it.
REWRITE_LOCK_TIMEOUT = "2s"
# How long the rewrite waits for transactions older than the deletion to end.
REWRITE_HORIZON_WAIT_S = 10.0


async def day_key(
    session: AsyncSession, day: dt.date, new_sealed_key: bytes, now: dt.datetime
) -> bytes:
    """The day's sealed key: `new_sealed_key` if this process comes first, else the one
    stored already."""
    insert = dialect_insert(session.get_bind().dialect.name)
    await session.execute(
        insert(DayKey)
        .values(day=day, sealed_key=new_sealed_key, created_at=now)
        .on_conflict_do_nothing(index_elements=["day"])
    )
    sealed = await session.scalar(select(DayKey.sealed_key).where(DayKey.day == day))
    assert sealed is not None
    return sealed


async def delete_day_keys_before(session: AsyncSession, day: dt.date) -> int:
    if session.get_bind().dialect.name == "sqlite":
        # The deleted rows are overwritten with zeros, not left in the page's free space.
        await session.execute(text("PRAGMA secure_delete = ON"))
    result = await session.execute(delete(DayKey).where(DayKey.day < day))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def rewrite_day_keys(engine: AsyncEngine) -> None:
    """PostgreSQL: write day_keys and its index into new files, so a deleted key's bytes
    leave the table's files now rather than whenever its page is reused. The table holds
    three rows at most, so the rewrite holds its lock for a moment. It first waits for the
    transactions older than the deletion to end: until then the key is still "recently
    dead" and VACUUM FULL would copy it into the new files (every run rewrites anew)."""
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await wait_for_horizon(autocommit, timeout_s=REWRITE_HORIZON_WAIT_S)
        await autocommit.execute(text(f"SET lock_timeout = '{REWRITE_LOCK_TIMEOUT}'"))
        try:
            await autocommit.execute(text("VACUUM FULL day_keys"))
        finally:
            await autocommit.execute(text("RESET lock_timeout"))
