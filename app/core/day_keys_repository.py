"""The SQL of the day keys: each day's key made once for every process, old keys destroyed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import dialect_insert
from app.core.models import DayKey


async def day_key(session: AsyncSession, day: dt.date, new_key: bytes, now: dt.datetime) -> bytes:
    """The day's key: `new_key` if this process comes first, else the one stored already."""
    insert = dialect_insert(session.get_bind().dialect.name)
    await session.execute(
        insert(DayKey)
        .values(day=day, key=new_key, created_at=now)
        .on_conflict_do_nothing(index_elements=["day"])
    )
    key = await session.scalar(select(DayKey.key).where(DayKey.day == day))
    assert key is not None
    return key


async def delete_day_keys_before(session: AsyncSession, day: dt.date) -> int:
    result = await session.execute(delete(DayKey).where(DayKey.day < day))
    return int(result.rowcount)  # type: ignore[attr-defined]
