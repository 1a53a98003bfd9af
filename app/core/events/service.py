"""Record an event in the caller's session: it commits, or vanishes, with the change."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.events import repository
from app.core.events.models import Event, EventType


async def record_event(
    session: AsyncSession,
    event_type: EventType | str,
    data: dict[str, Any],
    *,
    at: dt.datetime,
    licence_id: uuid.UUID | None = None,
    once: str | None = None,
) -> bool:
    """Put an event in the outbox; `once` names an event that must never repeat (False
    when it happened already). `data` holds only fields the privacy inventory declares."""
    kind = EventType(event_type)
    event = Event(
        id=uuid.uuid4(),
        type=kind.value,
        licence_id=licence_id,
        occurred_at=at,
        payload=data,
        dedupe_key=f"{kind.value}:{once}" if once is not None else None,
        planned_at=None,
    )
    return await repository.insert(session, event)


async def happened_within(
    session: AsyncSession,
    event_type: EventType,
    licence_id: uuid.UUID,
    *,
    at: dt.datetime,
    within: dt.timedelta,
) -> bool:
    """Whether the licence had such an event lately (callers hold the licence's lock)."""
    return await repository.happened_since(session, event_type.value, licence_id, at - within)
