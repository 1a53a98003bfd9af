"""Staff API for webhook endpoints: thin wiring over the webhook service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.core.deps import Now, ReadSession, SettingsDep, WriteSession
from app.core.errors import Forbidden, InvalidInput, NotFound, problem_responses
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, CursorQuery
from app.core.schemas import ResponseModel
from app.events import service
from app.events.auth import WebhooksWriter
from app.events.schemas import (
    DeliveryPage,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    SecretRotated,
    TestSent,
)

router = APIRouter(
    prefix="/v1/admin/webhooks",
    tags=["webhooks"],
    responses=problem_responses(InvalidInput, Forbidden),
)


class EndpointList(ResponseModel):
    items: list[EndpointOut]


@router.post("", status_code=201)
async def add_endpoint(
    data: EndpointCreate,
    staff: WebhooksWriter,
    session: WriteSession,
    settings: SettingsDep,
    now: Now,
) -> EndpointCreated:
    """Register an endpoint; its signing secret is in this answer and never again."""
    added = await service.add_endpoint(session, data, settings, actor=staff.name, now=now)
    return EndpointCreated.model_validate(
        EndpointOut.model_validate(added.endpoint).model_dump() | {"secret": added.secret}
    )


@router.get("")
async def list_endpoints(_: WebhooksWriter, session: ReadSession) -> EndpointList:
    endpoints = await service.list_endpoints(session)
    return EndpointList(items=[EndpointOut.model_validate(endpoint) for endpoint in endpoints])


@router.get("/{endpoint_id}", responses=problem_responses(NotFound))
async def show_endpoint(
    endpoint_id: uuid.UUID, _: WebhooksWriter, session: ReadSession
) -> EndpointOut:
    return EndpointOut.model_validate(await service.get_endpoint(session, endpoint_id))


@router.delete("/{endpoint_id}", status_code=204, responses=problem_responses(NotFound))
async def remove_endpoint(
    endpoint_id: uuid.UUID, staff: WebhooksWriter, session: WriteSession, now: Now
) -> Response:
    await service.remove_endpoint(session, endpoint_id, actor=staff.name, now=now)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", responses=problem_responses(NotFound))
async def rotate_secret(
    endpoint_id: uuid.UUID,
    staff: WebhooksWriter,
    session: WriteSession,
    settings: SettingsDep,
    now: Now,
) -> SecretRotated:
    """A new secret, shown once; the old one signs beside it for the overlap."""
    rotated = await service.rotate_secret(session, endpoint_id, settings, actor=staff.name, now=now)
    return SecretRotated(
        id=rotated.endpoint.id,
        secret=rotated.secret,
        previous_secret_until=rotated.endpoint.previous_secret_until,
    )


@router.post("/{endpoint_id}/enable", responses=problem_responses(NotFound))
async def enable_endpoint(
    endpoint_id: uuid.UUID, staff: WebhooksWriter, session: WriteSession, now: Now
) -> EndpointOut:
    """Send to a disabled endpoint again."""
    endpoint = await service.enable_endpoint(session, endpoint_id, actor=staff.name, now=now)
    return EndpointOut.model_validate(endpoint)


@router.post("/{endpoint_id}/test", status_code=202, responses=problem_responses(NotFound))
async def send_test(
    endpoint_id: uuid.UUID, staff: WebhooksWriter, session: WriteSession, now: Now
) -> TestSent:
    """Queue a webhook.test event for this endpoint alone."""
    event = await service.send_test(session, endpoint_id, actor=staff.name, now=now)
    return TestSent(event_id=event.id)


@router.get("/{endpoint_id}/deliveries", responses=problem_responses(NotFound))
async def list_deliveries(
    endpoint_id: uuid.UUID,
    _: WebhooksWriter,
    session: ReadSession,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> DeliveryPage:
    """The endpoint's delivery log, latest event first: outcomes, never bodies."""
    items, next_cursor = await service.deliveries(session, endpoint_id, cursor=cursor, limit=limit)
    return DeliveryPage(items=items, next_cursor=next_cursor)
