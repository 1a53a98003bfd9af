"""Erasure asked for by the key holder and confirmed by staff: the asking erases nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import NotFound
from app.licences.service import CUSTOMER_ACTOR
from app.privacy import erasure, repository

# Staff see the oldest requests first; more than this at once is a backlog to work through.
REQUESTS_LISTED = 500


@dataclass(frozen=True)
class PendingErasure:
    licence_id: uuid.UUID
    product: str
    key_last4: str
    requested_at: dt.datetime


async def request_erasure(session: AsyncSession, licence_id: uuid.UUID, now: dt.datetime) -> bool:
    """Record the key holder's request for staff to confirm; asking twice is harmless.
    True if it is new."""
    added = await repository.add_erasure_request(session, licence_id, now)
    if added:
        await audit.record(
            session,
            actor=CUSTOMER_ACTOR,
            action="licence.erasure_request",
            target_type="licence",
            target_id=str(licence_id),
            at=now,
        )
    return added


async def is_requested(session: AsyncSession, licence_id: uuid.UUID) -> bool:
    return await repository.erasure_request(session, licence_id) is not None


async def pending(session: AsyncSession) -> list[PendingErasure]:
    return [
        PendingErasure(request.licence_id, licence.product, licence.key_last4, request.requested_at)
        for request, licence in await repository.pending_erasure_requests(
            session, limit=REQUESTS_LISTED
        )
    ]


async def confirm(
    session: AsyncSession,
    licence_id: uuid.UUID,
    *,
    delete_licence: bool,
    actor: str,
    now: dt.datetime,
) -> erasure.Erasure:
    """Erase what the key holder asked to be erased; the request goes with the use data.
    Call `erasure.settle` once the transaction has committed."""
    if not await is_requested(session, licence_id):
        raise NotFound("No erasure request is pending for this licence")
    return await erasure.erase_licence_data(
        session, licence_id, delete_licence=delete_licence, actor=actor, now=now
    )
