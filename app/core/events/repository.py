"""The outbox's SQL as the layers below the delivery worker need it."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import dialect_insert
from app.core.events.models import Event


async def insert(session: AsyncSession, event: Event) -> bool:
    """Add the event; one whose dedupe key is taken already is skipped (False)."""
    if event.dedupe_key is None:
        session.add(event)
        return True
    values = {
        column.key: getattr(event, column.key)
        for column in Event.__table__.columns
        if column.key != "seq"
    }
    statement = (
        dialect_insert(session.get_bind().dialect.name)(Event)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def happened_since(
    session: AsyncSession, event_type: str, licence_id: uuid.UUID, since: dt.datetime
) -> bool:
    return bool(
        await session.scalar(
            select(
                exists().where(
                    Event.licence_id == licence_id,
                    Event.occurred_at > since,
                    Event.type == event_type,
                )
            )
        )
    )
