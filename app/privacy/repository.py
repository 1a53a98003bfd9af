"""The SQL of erasure requests."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import dialect_insert
from app.licences.models import Licence
from app.privacy.models import ErasureRequest


async def add_erasure_request(
    session: AsyncSession, licence_id: uuid.UUID, now: dt.datetime
) -> bool:
    """Record the request unless one is pending already; True if it is new."""
    statement = (
        dialect_insert(session.get_bind().dialect.name)(ErasureRequest)
        .values(licence_id=licence_id, requested_at=now)
        .on_conflict_do_nothing(index_elements=["licence_id"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def erasure_request(session: AsyncSession, licence_id: uuid.UUID) -> ErasureRequest | None:
    return await session.get(ErasureRequest, licence_id)


async def pending_erasure_requests(
    session: AsyncSession, *, limit: int
) -> list[tuple[ErasureRequest, Licence]]:
    """The oldest first, with the licence each is about."""
    rows = await session.execute(
        select(ErasureRequest, Licence)
        .join(Licence, Licence.id == ErasureRequest.licence_id)
        .order_by(ErasureRequest.requested_at, ErasureRequest.licence_id)
        .limit(limit)
    )
    return [(request, licence) for request, licence in rows]
