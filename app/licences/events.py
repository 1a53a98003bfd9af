"""Licence and machine events for the outbox: one call per event site, the same facts in each."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.events.models import EventType
from app.core.events.service import happened_within, record_event
from app.licences.models import Licence


def licence_reference(licence: Licence) -> dict[str, Any]:
    """What names a licence in every event: never its key, not even the last characters."""
    return {
        "licence_id": str(licence.id),
        "external_ref": licence.external_ref,
        "product": licence.product,
    }


def licence_terms(licence: Licence) -> dict[str, Any]:
    return licence_reference(licence) | {
        "status": licence.status,
        "expires_at": licence.expires_at.isoformat() if licence.expires_at else None,
        "updates_until": licence.updates_until.isoformat() if licence.updates_until else None,
        "max_machines": licence.max_machines,
        "max_users": licence.max_users,
        "overage": licence.overage,
        "entitlements": list(licence.entitlements),
        "trial_days": licence.trial_days,
        "grace_days": licence.grace_days,
        "lease_minutes": licence.lease_minutes,
    }


async def record_licence_event(
    session: AsyncSession,
    event_type: EventType | str,
    licence: Licence,
    *,
    at: dt.datetime,
    once: str | None = None,
    **facts: Any,
) -> bool:
    """Record an event about `licence`: its terms (licence.*) or its reference (the others),
    plus `facts` such as `machine` (a short machine reference) or `changed` (field names)."""
    kind = EventType(event_type)
    described = (
        licence_terms(licence)
        if kind.value.startswith("licence.")
        else (licence_reference(licence))
    )
    return await record_event(
        session, kind, described | facts, at=at, licence_id=licence.id, once=once
    )


# A licence refusing newcomers all day tells the vendor once an hour, not per refusal.
SEAT_DENIED_EVERY = dt.timedelta(hours=1)


async def record_seat_denied(
    session: AsyncSession,
    licence: Licence,
    *,
    machine: str,
    active: int,
    at: dt.datetime,
) -> bool:
    """machine.seat_denied, at most once per licence per hour; the caller holds the
    licence's row lock, so two servers cannot both decide it is the first."""
    if await happened_within(
        session, EventType.MACHINE_SEAT_DENIED, licence.id, at=at, within=SEAT_DENIED_EVERY
    ):
        return False
    return await record_licence_event(
        session,
        EventType.MACHINE_SEAT_DENIED,
        licence,
        at=at,
        machine=machine,
        allowed=licence.max_machines,
        active=active,
    )
