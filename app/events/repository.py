"""The webhook domain's SQL: endpoints, planning deliveries, claiming them, the queue."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from app.core.events.models import Event
from app.events.models import DeliveryStatus, EndpointStatus, WebhookDelivery, WebhookEndpoint


async def get_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, *, lock: bool = False
) -> WebhookEndpoint | None:
    return await session.get(WebhookEndpoint, endpoint_id, with_for_update=lock)


async def list_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    return list(
        await session.scalars(
            select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
    )


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    await session.delete(endpoint)


async def active_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    return list(
        await session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.status == EndpointStatus.ACTIVE.value)
        )
    )


async def unplanned_events(session: AsyncSession, limit: int) -> list[Event]:
    """The oldest events no worker has planned, locked against the other nodes' workers."""
    return list(
        await session.scalars(
            select(Event)
            .where(Event.planned_at.is_(None))
            .order_by(Event.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def add_delivery(
    session: AsyncSession, endpoint_id: uuid.UUID, event_seq: int, now: dt.datetime
) -> None:
    session.add(
        WebhookDelivery(
            endpoint_id=endpoint_id,
            event_seq=event_seq,
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


@dataclass(frozen=True)
class Claimed:
    """One delivery a worker now holds, with what it needs to send it."""

    delivery: WebhookDelivery
    event: Event
    endpoint: WebhookEndpoint


async def claim_due(
    session: AsyncSession, now: dt.datetime, lease_until: dt.datetime, limit: int
) -> list[Claimed]:
    """Due deliveries of active endpoints, each now held until `lease_until`. An ordered
    endpoint offers only its oldest pending delivery; rows another worker holds are skipped."""
    earlier = aliased(WebhookDelivery)
    waits_its_turn = exists().where(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.status == DeliveryStatus.PENDING.value,
        earlier.event_seq < WebhookDelivery.event_seq,
    )
    rows = (
        await session.execute(
            select(WebhookDelivery, Event, WebhookEndpoint)
            .join(Event, Event.seq == WebhookDelivery.event_seq)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.status == EndpointStatus.ACTIVE.value,
                or_(WebhookEndpoint.ordered.is_(False), ~waits_its_turn),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.event_seq)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
    ).all()
    claimed = [Claimed(delivery, event, endpoint) for delivery, event, endpoint in rows]
    for entry in claimed:
        entry.delivery.attempts += 1
        entry.delivery.last_attempt_at = now
        entry.delivery.next_attempt_at = lease_until
    return claimed


async def get_delivery(
    session: AsyncSession, endpoint_id: uuid.UUID, event_seq: int
) -> WebhookDelivery | None:
    return await session.get(WebhookDelivery, (endpoint_id, event_seq), with_for_update=True)


@dataclass(frozen=True)
class DeliveryRow:
    delivery: WebhookDelivery
    event_id: uuid.UUID
    event_type: str
    occurred_at: dt.datetime


async def deliveries_of(
    session: AsyncSession, endpoint_id: uuid.UUID, *, before_seq: int | None, limit: int
) -> list[DeliveryRow]:
    """An endpoint's deliveries, the latest event first."""
    query = (
        select(WebhookDelivery, Event.id, Event.type, Event.occurred_at)
        .join(Event, Event.seq == WebhookDelivery.event_seq)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
    )
    if before_seq is not None:
        query = query.where(WebhookDelivery.event_seq < before_seq)
    rows = await session.execute(query.order_by(WebhookDelivery.event_seq.desc()).limit(limit))
    return [DeliveryRow(*row) for row in rows.all()]


async def latest_attempts(session: AsyncSession) -> dict[uuid.UUID, WebhookDelivery]:
    """Each endpoint's most recently attempted delivery: how its last try went."""
    latest = (
        select(
            WebhookDelivery.endpoint_id,
            func.max(WebhookDelivery.last_attempt_at).label("attempted_at"),
        )
        .where(WebhookDelivery.last_attempt_at.is_not(None))
        .group_by(WebhookDelivery.endpoint_id)
        .subquery()
    )
    rows = await session.scalars(
        select(WebhookDelivery)
        .join(
            latest,
            and_(
                latest.c.endpoint_id == WebhookDelivery.endpoint_id,
                latest.c.attempted_at == WebhookDelivery.last_attempt_at,
            ),
        )
        .order_by(WebhookDelivery.event_seq)
    )
    # Deliveries tried in the same round share the moment; the latest event speaks for them.
    return {delivery.endpoint_id: delivery for delivery in rows}


async def pending_counts(session: AsyncSession) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(WebhookDelivery.endpoint_id, func.count())
        .where(WebhookDelivery.status == DeliveryStatus.PENDING.value)
        .group_by(WebhookDelivery.endpoint_id)
    )
    return {endpoint_id: int(count) for endpoint_id, count in rows.all()}


@dataclass(frozen=True)
class QueueState:
    """Deliveries waiting and events not yet planned, since when the oldest waits, and
    when the soonest waiting delivery is due."""

    pending: int
    unplanned: int
    oldest_at: dt.datetime | None
    next_attempt_at: dt.datetime | None

    @property
    def depth(self) -> int:
        return self.pending + self.unplanned

    def due_by(self, now: dt.datetime) -> bool:
        return self.next_attempt_at is not None and self.next_attempt_at <= now


def _queue_state_statement() -> Select[Any]:
    """One statement for the whole state: a worker's idle round is this round trip alone."""
    pending = (
        select(
            func.count().label("count"),
            func.min(Event.occurred_at).label("oldest_at"),
            func.min(WebhookDelivery.next_attempt_at).label("next_attempt_at"),
        )
        .select_from(WebhookDelivery)
        .join(Event, Event.seq == WebhookDelivery.event_seq)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
            WebhookEndpoint.status == EndpointStatus.ACTIVE.value,
        )
        .subquery("pending")
    )
    unplanned = (
        select(func.count().label("count"), func.min(Event.occurred_at).label("oldest_at"))
        .where(Event.planned_at.is_(None))
        .subquery("unplanned")
    )
    return select(
        pending.c.count,
        pending.c.oldest_at,
        pending.c.next_attempt_at,
        unplanned.c.count,
        unplanned.c.oldest_at,
    ).select_from(pending.join(unplanned, true()))


# Built once: a statement built anew each round cost more than the round trip.
QUEUE_STATE = _queue_state_statement()


async def queue_state(connection: AsyncConnection) -> QueueState:
    row = (await connection.execute(QUEUE_STATE)).one()
    pending, pending_oldest, next_attempt_at, unplanned, unplanned_oldest = row
    oldest = [moment for moment in (pending_oldest, unplanned_oldest) if moment is not None]
    return QueueState(int(pending), int(unplanned), min(oldest, default=None), next_attempt_at)


async def expire_events(session: AsyncSession, before: dt.datetime) -> int:
    """Events (and, by cascade, their deliveries) older than `before`, none still pending."""
    pending = exists().where(
        and_(
            WebhookDelivery.event_seq == Event.seq,
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
        )
    )
    doomed = select(Event.seq).where(
        Event.occurred_at < before, Event.planned_at.is_not(None), ~pending
    )
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.event_seq.in_(doomed)))
    result = await session.execute(delete(Event).where(Event.seq.in_(doomed)))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def try_lock(session: AsyncSession, lock_id: int) -> bool:
    """Take a lock held until the transaction ends, if no other node holds it (PostgreSQL);
    SQLite's one writer needs none."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(lock_id))))
