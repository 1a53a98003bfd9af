"""The SQL of staff tokens and staff sessions."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth.models import StaffSession, StaffToken


async def token_by_hash(session: AsyncSession, token_hash: str) -> StaffToken | None:
    token: StaffToken | None = await session.scalar(
        select(StaffToken).where(StaffToken.token_hash == token_hash)
    )
    return token


async def tokens(session: AsyncSession) -> list[StaffToken]:
    return list(await session.scalars(select(StaffToken).order_by(StaffToken.created_at)))


async def token_for_update(session: AsyncSession, token_id: uuid.UUID) -> StaffToken | None:
    return await session.get(StaffToken, token_id, with_for_update=True)


async def forget_sessions_ended(
    session: AsyncSession, *, now: dt.datetime, idle_since: dt.datetime
) -> None:
    await session.execute(
        delete(StaffSession).where(
            or_(StaffSession.expires_at <= now, StaffSession.last_used_at <= idle_since)
        )
    )


async def session_with_token_for_update(
    session: AsyncSession, id_hash: str
) -> tuple[StaffSession, StaffToken] | None:
    row = (
        await session.execute(
            select(StaffSession, StaffToken)
            .join(StaffToken, StaffToken.id == StaffSession.token_id)
            .where(StaffSession.id_hash == id_hash)
            .with_for_update(of=StaffSession)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def delete_session(session: AsyncSession, id_hash: str) -> None:
    await session.execute(delete(StaffSession).where(StaffSession.id_hash == id_hash))


async def drop_session(session: AsyncSession, staff_session: StaffSession) -> None:
    """Delete a session already loaded (and locked) in this transaction."""
    await session.delete(staff_session)
