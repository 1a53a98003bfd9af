"""The exact seat check: how a machine the licence has not seen gets a seat, or not.

One transaction locks the licence row, counts its active machines and admits
the newcomer, so two servers can never admit more than the limit between them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.events.models import EventType
from app.licences import repository
from app.licences.cache import LicenceSnapshot, seated_machines
from app.licences.changes import mark_changed
from app.licences.events import record_licence_event, record_seat_denied
from app.licences.models import Licence, Overage, Seat
from app.licences.schemas import short_machine_id


@dataclass(frozen=True)
class SeatDecision:
    licence: LicenceSnapshot
    seat: Seat
    newly_seated: bool
    seated: dict[str, dt.datetime]

    @property
    def active(self) -> int:
        return len(self.seated)

    @property
    def over_limit(self) -> bool:
        return self.active > self.licence.max_machines


def start_trial(licence: Licence, now: dt.datetime) -> bool:
    """A trial's clock starts at its first seat: its expiry is set then, once."""
    if licence.trial_days is None or licence.expires_at is not None:
        return False
    licence.expires_at = now + dt.timedelta(days=licence.trial_days)
    licence.updated_at = now
    return True


async def claim_seat(
    session: AsyncSession,
    licence: LicenceSnapshot,
    machine_id: str,
    *,
    version: str,
    user_count: int,
    now: dt.datetime,
) -> SeatDecision:
    locked = await repository.lock_for_seat_check(session, licence.id)
    current = LicenceSnapshot.of(locked) if locked is not None else licence
    seated = await seated_machines(session, current, now)
    already_seated = machine_id in seated
    seated.pop(machine_id, None)
    if already_seated or len(seated) < current.max_machines:
        seat = Seat.GRANTED
    else:
        seat = Seat.GRANTED if current.overage == Overage.REPORT else Seat.DENIED
    if seat is Seat.GRANTED:
        seated[machine_id] = now
    await repository.record_seat(
        session, current.id, machine_id, seat, version=version, user_count=user_count, now=now
    )
    if seat is Seat.GRANTED and not already_seated:
        if locked is not None and start_trial(locked, now):
            current = LicenceSnapshot.of(locked)
            # The trial's expiry is a change of terms, told in the same transaction.
            await record_licence_event(
                session, EventType.LICENCE_CHANGED, locked, at=now, changed=["expires_at"]
            )
        await mark_changed(session, current.id)
    if seat is Seat.DENIED and locked is not None:
        await record_seat_denied(
            session, locked, machine=short_machine_id(machine_id), active=len(seated), at=now
        )
    return SeatDecision(current, seat, seat is Seat.GRANTED and not already_seated, seated)
