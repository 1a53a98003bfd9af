"""Licence administration: the one place the API and the CLI change licences."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.pagination import DEFAULT_LIMIT, newest_first
from app.core.pseudonyms import Pseudonyms, normalise_licence_key
from app.licences.changes import mark_changed
from app.licences.models import Licence, LicenceStatus, Machine, Seat
from app.licences.schemas import MACHINE_REF_PATTERN, LicenceChange, LicenceCreate

# Crockford's base32: no I, L, O or U to misread. 25 symbols carry 125 bits.
KEY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
KEY_GROUPS, KEY_GROUP_SIZE = 5, 5


def generate_key() -> str:
    groups = (
        "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_GROUP_SIZE))
        for _ in range(KEY_GROUPS)
    )
    return "-".join(groups)


@dataclass(frozen=True)
class NewLicence:
    licence: Licence
    key: str


async def create_licence(
    session: AsyncSession,
    pseudonyms: Pseudonyms,
    data: LicenceCreate,
    *,
    default_window_days: int,
    actor: str,
    now: dt.datetime,
) -> NewLicence:
    key = data.key or generate_key()
    if len(normalise_licence_key(key)) < 8:
        raise InvalidInput("The key needs at least 8 characters besides spaces and dashes")
    licence = Licence(
        id=uuid.uuid4(),
        product=data.product,
        key_hash=pseudonyms.key_hash(key),
        key_last4=normalise_licence_key(key)[-4:],
        max_machines=data.max_machines,
        max_users=data.max_users,
        expires_at=data.expires_at,
        updates_until=data.updates_until,
        entitlements=sorted(set(data.entitlements)),
        overage=data.overage.value,
        activity_window_days=data.activity_window_days or default_window_days,
        status=LicenceStatus.ACTIVE.value,
        created_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(licence)
    except IntegrityError as error:
        raise Conflict("A licence with this key exists already") from error
    await mark_changed(session, licence.id)
    await audit.record(
        session,
        actor=actor,
        action="licence.create",
        target_type="licence",
        target_id=str(licence.id),
        at=now,
        detail={"product": licence.product, "max_machines": licence.max_machines},
    )
    return NewLicence(licence, key)


async def get_licence(
    session: AsyncSession, licence_id: uuid.UUID, *, lock: bool = False
) -> Licence:
    licence = await session.get(Licence, licence_id, with_for_update=lock)
    if licence is None:
        raise NotFound("No such licence")
    return licence


async def find_by_key(session: AsyncSession, pseudonyms: Pseudonyms, key: str) -> Licence:
    licence = await session.scalar(
        select(Licence).where(Licence.key_hash == pseudonyms.key_hash(key))
    )
    if licence is None:
        raise NotFound("No licence has this key")
    return licence


@dataclass(frozen=True)
class LicenceFilter:
    product: str | None = None
    status: LicenceStatus | None = None
    key_last4: str | None = None


def _filtered(query: Select[Licence], wanted: LicenceFilter) -> Select[Licence]:
    if wanted.product:
        query = query.where(Licence.product == wanted.product)
    if wanted.status:
        query = query.where(Licence.status == wanted.status.value)
    if wanted.key_last4:
        # Keys are printable ASCII; anything else (a NUL byte) PostgreSQL would refuse.
        if not re.fullmatch(r"[\x20-\x7e]+", wanted.key_last4):
            raise InvalidInput("A key holds printable ASCII characters only")
        query = query.where(Licence.key_last4 == normalise_licence_key(wanted.key_last4))
    return query


async def list_licences(
    session: AsyncSession,
    wanted: LicenceFilter,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[Licence], str | None]:
    return await newest_first(
        session,
        _filtered(select(Licence), wanted),
        Licence.created_at,
        Licence.id,
        cursor=cursor,
        limit=limit,
    )


_ALLOWED_STATUS_CHANGES = {
    LicenceStatus.ACTIVE: {LicenceStatus.SUSPENDED, LicenceStatus.REVOKED},
    LicenceStatus.SUSPENDED: {LicenceStatus.ACTIVE, LicenceStatus.REVOKED},
    LicenceStatus.REVOKED: set(),
}


async def change_licence(
    session: AsyncSession,
    licence_id: uuid.UUID,
    change: LicenceChange,
    *,
    actor: str,
    now: dt.datetime,
) -> Licence:
    licence = await get_licence(session, licence_id, lock=True)
    fields = change.model_dump(include=change.model_fields_set)
    if "max_machines" in fields and fields["max_machines"] is None:
        raise InvalidInput("max_machines cannot be cleared")
    if "activity_window_days" in fields and fields["activity_window_days"] is None:
        raise InvalidInput("activity_window_days cannot be cleared")
    if "overage" in fields and fields["overage"] is None:
        raise InvalidInput("overage cannot be cleared")
    if "entitlements" in fields:
        fields["entitlements"] = sorted(set(fields["entitlements"] or ()))
    if "status" in fields:
        new_status = fields["status"]
        if new_status is None:
            raise InvalidInput("status cannot be cleared")
        current = LicenceStatus(licence.status)
        if new_status != current and new_status not in _ALLOWED_STATUS_CHANGES[current]:
            raise Conflict(f"A {current.value} licence cannot become {new_status.value}")
    before = {name: getattr(licence, name) for name in fields}
    for name, value in fields.items():
        setattr(licence, name, value.value if hasattr(value, "value") else value)
    licence.updated_at = now
    await mark_changed(session, licence.id)
    await audit.record(
        session,
        actor=actor,
        action="licence.change",
        target_type="licence",
        target_id=str(licence.id),
        at=now,
        detail={
            "changed": sorted(fields),
            "before": _jsonable(before),
            "after": _jsonable({name: getattr(licence, name) for name in fields}),
        },
    )
    return licence


def _jsonable(values: dict[str, object]) -> dict[str, object]:
    return {
        name: value.isoformat() if isinstance(value, dt.date) else value
        for name, value in values.items()
    }


# The licence detail lists this many machines, the most recently seen first.
MACHINES_SHOWN = 200
# Staff see machine ids by this many hex digits: enough to tell a licence's
# machines apart and to retire one, no more.
SHORT_MACHINE_ID = 12


def short_machine_id(machine_id: str) -> str:
    return machine_id[:SHORT_MACHINE_ID]


def holds_seat(licence: Licence, now: dt.datetime) -> ColumnElement[bool]:
    """Machines counted against the limit now: granted, not retired, seen within the window."""
    return and_(
        Machine.licence_id == licence.id,
        Machine.seat == Seat.GRANTED.value,
        Machine.retired_at.is_(None),
        Machine.last_seen_at > now - dt.timedelta(days=licence.activity_window_days),
    )


def is_active(machine: Machine, licence: Licence, now: dt.datetime) -> bool:
    return (
        machine.seat == Seat.GRANTED.value
        and machine.retired_at is None
        and machine.last_seen_at > now - dt.timedelta(days=licence.activity_window_days)
    )


@dataclass(frozen=True)
class SeatUsage:
    """Machines holding a seat now, and the most users any of them last reported."""

    machines: int
    peak_users: int


async def seat_usage(session: AsyncSession, licence: Licence, now: dt.datetime) -> SeatUsage:
    machines, peak_users = (
        await session.execute(
            select(func.count(), func.max(Machine.last_user_count)).where(holds_seat(licence, now))
        )
    ).one()
    return SeatUsage(machines=int(machines), peak_users=int(peak_users or 0))


@dataclass(frozen=True)
class MachineList:
    machines: list[Machine]
    total: int


async def list_machines(
    session: AsyncSession, licence: Licence, *, limit: int = MACHINES_SHOWN
) -> MachineList:
    query = select(Machine).where(Machine.licence_id == licence.id)
    machines = await session.scalars(
        query.order_by(Machine.last_seen_at.desc(), Machine.machine_id).limit(limit)
    )
    total = await session.scalar(
        select(func.count()).select_from(Machine).where(Machine.licence_id == licence.id)
    )
    return MachineList(list(machines), int(total or 0))


async def retire_machine(
    session: AsyncSession,
    licence_id: uuid.UUID,
    machine_ref: str,
    *,
    actor: str,
    now: dt.datetime,
) -> Machine:
    """Stop counting a machine at once (hardware replaced); `machine_ref` may be a prefix."""
    if not re.fullmatch(MACHINE_REF_PATTERN, machine_ref):
        raise InvalidInput("A machine is named by 12 to 32 lower-case hex digits")
    licence = await get_licence(session, licence_id)
    # Hex only, so LIKE sees no wildcards.
    matches = list(
        await session.scalars(
            select(Machine)
            .where(Machine.licence_id == licence.id, Machine.machine_id.like(f"{machine_ref}%"))
            .limit(2)
            .with_for_update()
        )
    )
    if not matches:
        raise NotFound("The licence has no such machine")
    if len(matches) > 1:
        raise Conflict("More than one machine starts so; give more of its id")
    machine = matches[0]
    if machine.retired_at is not None:
        return machine
    machine.retired_at = now
    await mark_changed(session, licence.id)
    await audit.record(
        session,
        actor=actor,
        action="machine.retire",
        target_type="licence",
        target_id=str(licence.id),
        at=now,
        detail={"machine": short_machine_id(machine.machine_id)},
    )
    return machine
