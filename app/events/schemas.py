"""Wire models of the webhook administration API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from app.core.events.models import EventType
from app.core.schemas import ResponseModel, StrictModel
from app.events.guard import MAX_URL_LENGTH
from app.events.models import DeliveryStatus, EndpointStatus

WebhookUrl = Annotated[str, StringConstraints(min_length=8, max_length=MAX_URL_LENGTH)]


class EndpointCreate(StrictModel):
    url: WebhookUrl = Field(description="https only; never a private or metadata address")
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(EventType))]
    ordered: bool = Field(
        default=False,
        description="Deliver one at a time in the order events happened (slower)",
    )


class EndpointOut(ResponseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    ordered: bool
    status: EndpointStatus
    created_at: dt.datetime
    updated_at: dt.datetime
    failing_since: dt.datetime | None
    last_success_at: dt.datetime | None
    disabled_at: dt.datetime | None
    previous_secret_until: dt.datetime | None = Field(
        description="Until when the secret before the last rotation signs too"
    )


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret; shown this once and never again")


class SecretRotated(ResponseModel):
    id: uuid.UUID
    secret: str = Field(description="The new signing secret; shown this once")
    previous_secret_until: dt.datetime | None


class DeliveryOut(ResponseModel):
    """One event's delivery to an endpoint: never its body, nor the receiver's answer."""

    event_id: uuid.UUID
    event_type: str
    occurred_at: dt.datetime
    status: DeliveryStatus
    attempts: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    last_latency_ms: int | None
    delivered_at: dt.datetime | None


class DeliveryPage(ResponseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class TestSent(ResponseModel):
    event_id: uuid.UUID
