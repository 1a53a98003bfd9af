"""Licence administration: the one place the API and the CLI change licences."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.pagination import DEFAULT_LIMIT
from app.core.pseudonyms import Pseudonyms, normalise_licence_key
from app.licences import repository
from app.licences.changes import mark_changed
from app.licences.events import record_licence_event
from app.licences.models import (
    EffectiveStatus,
    Licence,
    LicenceKey,
    LicenceStatus,
    Machine,
    Seat,
)
from app.licences.schemas import (
    MACHINE_REF_PATTERN,
    LicenceChange,
    LicenceCreate,
    short_machine_id,
)

# Crockford's base32: no I, L, O or U to misread. 25 symbols carry 125 bits.
KEY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
KEY_GROUPS, KEY_GROUP_SIZE = 5, 5
# A key staff choose must resist guessing too: 16 symbols of a 32-symbol alphabet carry
# 80 bits; a key of few different characters (AAAA..., 1212...) is a pattern, not a secret.
MIN_CUSTOM_KEY_LENGTH = 16
MIN_CUSTOM_KEY_DISTINCT = 8


def generate_key() -> str:
    groups = (
        "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_GROUP_SIZE))
        for _ in range(KEY_GROUPS)
    )
    return "-".join(groups)


def check_custom_key(key: str) -> None:
    """Refuse a staff-set key that could be guessed (case, spaces and dashes ignored)."""
    normalised = normalise_licence_key(key)
    if len(normalised) < MIN_CUSTOM_KEY_LENGTH or len(set(normalised)) < MIN_CUSTOM_KEY_DISTINCT:
        raise InvalidInput(
            f"A custom key needs at least {MIN_CUSTOM_KEY_LENGTH} characters besides spaces "
            f"and dashes, case ignored, with {MIN_CUSTOM_KEY_DISTINCT} or more different ones: "
            "a shorter key can be guessed. Leave the key out to have one generated."
        )


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
    if data.key is not None:
        check_custom_key(data.key)
    key = data.key or generate_key()
    licence = Licence(
        id=uuid.uuid4(),
        product=data.product,
        key_last4=normalise_licence_key(key)[-4:],
        max_machines=data.max_machines,
        max_users=data.max_users,
        expires_at=data.expires_at,
        updates_until=data.updates_until,
        entitlements=sorted(set(data.entitlements)),
        overage=data.overage.value,
        activity_window_days=data.activity_window_days or default_window_days,
        trial_days=data.trial_days,
        grace_days=data.grace_days,
        lease_minutes=data.seat_lease_minutes,
        status=LicenceStatus.ACTIVE.value,
        external_ref=data.external_ref,
        created_at=now,
        updated_at=now,
    )
    await audit.insert_audited(
        session,
        licence,
        LicenceKey(key_hash=pseudonyms.key_hash(key), licence_id=licence.id, created_at=now),
        conflict="A licence with this key exists already",
        actor=actor,
        action="licence.create",
        target_type="licence",
        target_id=str(licence.id),
        at=now,
        detail={
            "product": licence.product,
            "max_machines": licence.max_machines,
            "trial_days": licence.trial_days,
            "floating": licence.floating,
        },
    )
    await mark_changed(session, licence.id)
    await record_licence_event(session, "licence.created", licence, at=now)
    return NewLicence(licence, key)


async def get_licence(
    session: AsyncSession, licence_id: uuid.UUID, *, lock: bool = False
) -> Licence:
    licence = await repository.get_licence(session, licence_id, lock=lock)
    if licence is None:
        raise NotFound("No such licence")
    return licence


async def find_by_key(session: AsyncSession, pseudonyms: Pseudonyms, key: str) -> Licence:
    licence = await repository.find_by_key_hash(session, pseudonyms.key_hash(key))
    if licence is None:
        raise NotFound("No licence has this key")
    return licence


async def look_up_by_key(
    session: AsyncSession, pseudonyms: Pseudonyms, key: str, *, actor: str, now: dt.datetime
) -> Licence | None:
    """The licence a full key opens, or None; audited either way (never the key itself),
    so a staff token used to try keys leaves a trail."""
    licence = await repository.find_by_key_hash(session, pseudonyms.key_hash(key))
    await audit.record(
        session,
        actor=actor,
        action="licence.lookup",
        target_type="licence",
        target_id=str(licence.id) if licence else "",
        at=now,
        detail={"found": licence is not None},
    )
    return licence


@dataclass(frozen=True)
class LicenceFilter:
    product: str | None = None
    status: EffectiveStatus | None = None
    key_last4: str | None = None
    external_ref: str | None = None


def _key_last4(wanted: LicenceFilter) -> str | None:
    if not wanted.key_last4:
        return None
    # Keys are printable ASCII; anything else (a NUL byte) PostgreSQL would refuse.
    if not re.fullmatch(r"[\x20-\x7e]+", wanted.key_last4):
        raise InvalidInput("A key holds printable ASCII characters only")
    return normalise_licence_key(wanted.key_last4)


async def list_licences(
    session: AsyncSession,
    wanted: LicenceFilter,
    *,
    now: dt.datetime,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[Licence], str | None]:
    return await repository.list_licences(
        session,
        product=wanted.product,
        status=wanted.status,
        now=now,
        key_last4=_key_last4(wanted),
        external_ref=wanted.external_ref,
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
    changed = sorted(name for name in fields if getattr(licence, name) != before[name])
    licence.updated_at = now
    await mark_changed(session, licence.id)
    if changed:
        await record_licence_event(session, "licence.changed", licence, at=now, changed=changed)
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


def is_active(machine: Machine, licence: Licence, now: dt.datetime) -> bool:
    """A loaded machine holds a seat: the same rule as `repository.seat_held`, in Python."""
    return (
        machine.seat == Seat.GRANTED.value
        and machine.retired_at is None
        and (
            machine.last_seen_at > now - repository.window_of(licence)
            or (machine.offline_until is not None and machine.offline_until > now)
        )
    )


@dataclass(frozen=True)
class SeatUsage:
    """Machines holding a seat now, and the most users any of them last reported."""

    machines: int
    peak_users: int


async def seat_usage(session: AsyncSession, licence: Licence, now: dt.datetime) -> SeatUsage:
    machines, peak_users = await repository.seat_count_and_peak_users(session, licence, now)
    return SeatUsage(machines=machines, peak_users=peak_users)


@dataclass(frozen=True)
class MachineList:
    machines: list[Machine]
    total: int


async def list_machines(
    session: AsyncSession, licence: Licence, *, limit: int = MACHINES_SHOWN
) -> MachineList:
    machines = await repository.machines_of(session, licence.id, limit=limit)
    return MachineList(machines, await repository.count_machines_of(session, licence.id))


async def _machine_by_ref(
    session: AsyncSession, licence_id: uuid.UUID, machine_ref: str
) -> Machine:
    """The licence's one machine whose id starts with `machine_ref`, locked."""
    if not re.fullmatch(MACHINE_REF_PATTERN, machine_ref):
        raise InvalidInput("A machine is named by 12 to 32 lower-case hex digits")
    matches = await repository.machines_by_prefix(session, licence_id, machine_ref, limit=2)
    if not matches:
        raise NotFound("The licence has no such machine")
    if len(matches) > 1:
        raise Conflict("More than one machine starts so; give more of its id")
    return matches[0]


async def retire_machine(
    session: AsyncSession,
    licence_id: uuid.UUID,
    machine_ref: str,
    *,
    actor: str,
    now: dt.datetime,
) -> Machine:
    """Stop counting a machine at once (hardware replaced); `machine_ref` may be a prefix."""
    licence = await get_licence(session, licence_id)
    machine = await _machine_by_ref(session, licence.id, machine_ref)
    if machine.retired_at is not None:
        return machine
    machine.retired_at = now
    machine.offline_until = None
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
    await record_licence_event(
        session,
        "machine.deactivated",
        licence,
        at=now,
        machine=short_machine_id(machine.machine_id),
        by="staff",
    )
    return machine


CUSTOMER_ACTOR = "customer"


async def release_seat(
    session: AsyncSession, licence_id: uuid.UUID, machine_id: str, *, now: dt.datetime
) -> bool:
    """The customer frees this machine's seat at once (deactivation); False if it held none.

    Like a retirement by staff, but asked for by the key holder: a later ping of the
    machine asks for a seat again, as a newcomer would.
    """
    machine = await repository.get_machine(session, licence_id, machine_id, lock=True)
    if machine is None or machine.retired_at is not None or machine.seat != Seat.GRANTED.value:
        return False
    machine.retired_at = now
    # A licence file on the machine runs on until it ends: it cannot be recalled offline.
    machine.offline_until = None
    await mark_changed(session, licence_id)
    await audit.record(
        session,
        actor=CUSTOMER_ACTOR,
        action="machine.deactivate",
        target_type="licence",
        target_id=str(licence_id),
        at=now,
        detail={"machine": short_machine_id(machine_id)},
    )
    licence = await get_licence(session, licence_id)
    await record_licence_event(
        session,
        "machine.deactivated",
        licence,
        at=now,
        machine=short_machine_id(machine_id),
        by=CUSTOMER_ACTOR,
    )
    return True


async def free_machine(
    session: AsyncSession, licence_id: uuid.UUID, machine_ref: str, *, now: dt.datetime
) -> bool:
    """The key holder frees one of the licence's machines by its short reference (the
    customer page): the deactivation's rule and audit; False if it held no seat."""
    machine = await _machine_by_ref(session, licence_id, machine_ref)
    return await release_seat(session, licence_id, machine.machine_id, now=now)
