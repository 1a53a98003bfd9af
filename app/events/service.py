"""Webhook endpoints for staff: the one place the API, the CLI and the page change them."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import InvalidInput, NotFound
from app.core.events.models import Event, EventType
from app.core.pagination import DEFAULT_LIMIT, CursorInt64, decode_cursor, encode_cursor
from app.core.settings import Settings
from app.events import guard, repository, signing
from app.events.models import DeliveryStatus, EndpointStatus, WebhookDelivery, WebhookEndpoint
from app.events.repository import DeliveryRow
from app.events.schemas import DeliveryOut, EndpointCreate


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str


def _audit_detail(endpoint: WebhookEndpoint) -> dict[str, object]:
    # The host only: a receiver may carry a token in its URL's path or query.
    return {"host": urlsplit(endpoint.url).hostname, "events": endpoint.events}


def url_host(endpoint: WebhookEndpoint) -> str:
    """Where an endpoint's URL points, with its port: what staff may see of it anywhere (a
    receiver may carry a token in its path or query)."""
    return urlsplit(endpoint.url).netloc


@dataclass(frozen=True)
class EndpointOverview:
    """An endpoint as the staff page lists it: how its last attempt went, what waits."""

    endpoint: WebhookEndpoint
    host: str
    last_attempt: WebhookDelivery | None
    waiting: int


async def add_endpoint(
    session: AsyncSession,
    data: EndpointCreate,
    settings: Settings,
    *,
    actor: str,
    now: dt.datetime,
) -> NewEndpoint:
    """Vet the URL (resolving it now) and register the endpoint with a fresh secret."""
    if EventType.WEBHOOK_TEST in data.events:
        raise InvalidInput("webhook.test is sent on request, never subscribed to")
    try:
        await guard.vet(data.url, settings)
    except guard.Refused as refused:
        raise InvalidInput(str(refused)) from refused
    secret = signing.new_secret()
    endpoint_id = uuid.uuid4()
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        url=data.url,
        events=sorted({kind.value for kind in data.events}),
        ordered=data.ordered,
        secret_sealed=signing.EndpointSecrets(settings).seal(endpoint_id, secret),
        previous_secret_sealed=None,
        previous_secret_until=None,
        status=EndpointStatus.ACTIVE.value,
        created_at=now,
        updated_at=now,
        failing_since=None,
        last_success_at=None,
        disabled_at=None,
    )
    session.add(endpoint)
    await audit.record(
        session,
        actor=actor,
        action="webhook.add",
        target_type="webhook",
        target_id=str(endpoint.id),
        at=now,
        detail=_audit_detail(endpoint),
    )
    await session.flush()
    return NewEndpoint(endpoint, secret)


async def get_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, *, lock: bool = False
) -> WebhookEndpoint:
    endpoint = await repository.get_endpoint(session, endpoint_id, lock=lock)
    if endpoint is None:
        raise NotFound("No such webhook endpoint")
    return endpoint


async def list_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    return await repository.list_endpoints(session)


async def endpoint_overviews(session: AsyncSession) -> list[EndpointOverview]:
    latest = await repository.latest_attempts(session)
    waiting = await repository.pending_counts(session)
    return [
        EndpointOverview(
            endpoint, url_host(endpoint), latest.get(endpoint.id), waiting.get(endpoint.id, 0)
        )
        for endpoint in await repository.list_endpoints(session)
    ]


async def remove_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, *, actor: str, now: dt.datetime
) -> None:
    """Remove an endpoint with its delivery log; what it had not received is not sent."""
    endpoint = await get_endpoint(session, endpoint_id, lock=True)
    await audit.record(
        session,
        actor=actor,
        action="webhook.remove",
        target_type="webhook",
        target_id=str(endpoint.id),
        at=now,
        detail=_audit_detail(endpoint),
    )
    await repository.delete_endpoint(session, endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    settings: Settings,
    *,
    actor: str,
    now: dt.datetime,
) -> NewEndpoint:
    """A new secret; the old one keeps signing beside it for the overlap, so the receiver
    can switch without missing a message."""
    endpoint = await get_endpoint(session, endpoint_id, lock=True)
    overlap = dt.timedelta(hours=settings.webhook_secret_overlap_hours)
    secret = signing.new_secret()
    endpoint.previous_secret_sealed = endpoint.secret_sealed if overlap else None
    endpoint.previous_secret_until = now + overlap if overlap else None
    endpoint.secret_sealed = signing.EndpointSecrets(settings).seal(endpoint.id, secret)
    endpoint.updated_at = now
    await audit.record(
        session,
        actor=actor,
        action="webhook.rotate_secret",
        target_type="webhook",
        target_id=str(endpoint.id),
        at=now,
        detail={"previous_secret_until": (now + overlap).isoformat()},
    )
    await session.flush()
    return NewEndpoint(endpoint, secret)


async def enable_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, *, actor: str, now: dt.datetime
) -> WebhookEndpoint:
    """Send to a disabled endpoint again, starting with what waits for it."""
    endpoint = await get_endpoint(session, endpoint_id, lock=True)
    if endpoint.status == EndpointStatus.ACTIVE.value:
        return endpoint
    endpoint.status = EndpointStatus.ACTIVE.value
    endpoint.disabled_at = None
    endpoint.failing_since = None
    endpoint.updated_at = now
    await audit.record(
        session,
        actor=actor,
        action="webhook.enable",
        target_type="webhook",
        target_id=str(endpoint.id),
        at=now,
        detail=_audit_detail(endpoint),
    )
    await session.flush()
    return endpoint


async def send_test(
    session: AsyncSession, endpoint_id: uuid.UUID, *, actor: str, now: dt.datetime
) -> Event:
    """A webhook.test event for this endpoint alone, delivered like any other."""
    endpoint = await get_endpoint(session, endpoint_id)
    event = Event(
        id=uuid.uuid4(),
        type=EventType.WEBHOOK_TEST.value,
        licence_id=None,
        occurred_at=now,
        payload={"endpoint_id": str(endpoint.id)},
        dedupe_key=None,
        planned_at=now,
    )
    session.add(event)
    await session.flush()
    repository.add_delivery(session, endpoint.id, event.seq, now)
    await audit.record(
        session,
        actor=actor,
        action="webhook.test",
        target_type="webhook",
        target_id=str(endpoint.id),
        at=now,
        detail={"event_id": str(event.id)},
    )
    await session.flush()
    return event


def _delivery_out(row: DeliveryRow) -> DeliveryOut:
    delivery = row.delivery
    pending = delivery.status == DeliveryStatus.PENDING.value
    return DeliveryOut(
        event_id=row.event_id,
        event_type=row.event_type,
        occurred_at=row.occurred_at,
        status=DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if pending else None,
        last_attempt_at=delivery.last_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        last_latency_ms=delivery.last_latency_ms,
        delivered_at=delivery.delivered_at,
    )


async def deliveries(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[DeliveryOut], str | None]:
    """An endpoint's delivery log, the latest event first: outcomes, never bodies."""
    await get_endpoint(session, endpoint_id)
    before: int | None = None
    if cursor:
        (before,) = decode_cursor(cursor, tuple[CursorInt64])
    rows = await repository.deliveries_of(session, endpoint_id, before_seq=before, limit=limit + 1)
    items = [_delivery_out(row) for row in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1].delivery.event_seq) if len(rows) > limit else None
    return items, next_cursor
