"""The exact seat check: how a machine the licence has not seen gets a seat, or not.

One transaction locks the licence row, counts its active machines and admits
the newcomer, so two servers can never admit more than the limit between them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import dialect_insert
from app.licences.cache import LicenceSnapshot, seated_machines
from app.licences.changes import mark_changed
from app.licences.models import Licence, Machine, Overage, Seat


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


async def claim_seat(
    session: AsyncSession,
    licence: LicenceSnapshot,
    machine_id: str,
    *,
    version: str,
    user_count: int,
    now: dt.datetime,
) -> SeatDecision:
    # FOR NO KEY UPDATE serialises seat checks on this licence without blocking
    # the batch writer, whose machine upserts only need a key-share lock.
    locked = await session.scalar(
        select(Licence).where(Licence.id == licence.id).with_for_update(key_share=True)
    )
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
    await _record_machine(session, current, machine_id, seat, version, user_count, now)
    if seat is Seat.GRANTED and not already_seated:
        await mark_changed(session, current.id)
    return SeatDecision(current, seat, seat is Seat.GRANTED and not already_seated, seated)


async def _record_machine(
    session: AsyncSession,
    licence: LicenceSnapshot,
    machine_id: str,
    seat: Seat,
    version: str,
    user_count: int,
    now: dt.datetime,
) -> None:
    insert = dialect_insert(session.get_bind().dialect.name)
    statement = insert(Machine).values(
        licence_id=licence.id,
        machine_id=machine_id,
        first_seen_at=now,
        last_seen_at=now,
        last_version=version,
        last_user_count=user_count,
        seat=seat.value,
        retired_at=None,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["licence_id", "machine_id"],
            set_={
                "last_seen_at": statement.excluded.last_seen_at,
                "last_version": statement.excluded.last_version,
                "last_user_count": statement.excluded.last_user_count,
                "seat": statement.excluded.seat,
                "retired_at": None,
            },
        )
    )
