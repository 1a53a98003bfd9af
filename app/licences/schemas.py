"""Wire models of the licence administration API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from app.core.schemas import PRINTABLE_PATTERN, Moment, Name, ResponseModel, StrictModel
from app.licences.models import EffectiveStatus, Licence, LicenceStatus, Machine, Overage

LicenceKey = Annotated[
    str, StringConstraints(min_length=8, max_length=128, pattern=r"^[\x20-\x7e]+$")
]
MaxMachines = Annotated[int, Field(ge=1, le=1_000_000)]
MaxUsers = Annotated[int, Field(ge=1, le=10_000_000)]
WindowDays = Annotated[int, Field(ge=1, le=365)]
Entitlements = Annotated[list[Name], Field(max_length=32)]
TermDays = Annotated[int, Field(ge=1, le=3650)]
# At least a few minutes: the SDK checks in twice within each lease.
LeaseMinutes = Annotated[int, Field(ge=5, le=7 * 24 * 60)]
DEFAULT_LEASE_MINUTES = 60
ExternalRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=PRINTABLE_PATTERN),
    Field(description="The vendor's own reference for the licence (a CRM id); opaque here"),
]


class LicenceCreate(StrictModel):
    product: Name
    key: LicenceKey | None = Field(default=None, description="Generated when absent")
    max_machines: MaxMachines = 1
    max_users: MaxUsers | None = None
    expires_at: Moment | None = None
    updates_until: dt.date | None = None
    entitlements: Entitlements = Field(default_factory=list)
    overage: Overage = Overage.REPORT
    activity_window_days: WindowDays | None = None
    trial_days: TermDays | None = Field(
        default=None, description="A trial: its expiry is set at its first seat, this many days on"
    )
    grace_days: TermDays | None = Field(
        default=None, description="Days the product may keep working after expiry"
    )
    floating: bool = Field(default=False, description="Seats are leases that lapse unless renewed")
    lease_minutes: LeaseMinutes | None = Field(
        default=None, description=f"A floating seat's lease (default {DEFAULT_LEASE_MINUTES})"
    )
    external_ref: ExternalRef | None = None

    @model_validator(mode="after")
    def _terms_agree(self) -> LicenceCreate:
        if self.trial_days is not None and self.expires_at is not None:
            raise ValueError("a trial's expiry is set at its first seat: give one of the two")
        if self.lease_minutes is not None and not self.floating:
            raise ValueError("lease_minutes is for floating licences")
        return self

    @property
    def seat_lease_minutes(self) -> int | None:
        if not self.floating:
            return None
        return self.lease_minutes or DEFAULT_LEASE_MINUTES


class LicenceKeyLookup(StrictModel):
    key: LicenceKey = Field(description="The full licence key, as the customer typed it")


class LicenceChange(StrictModel):
    """Only the fields present change; null clears a limit or a date."""

    status: LicenceStatus | None = None
    max_machines: MaxMachines | None = None
    max_users: MaxUsers | None = None
    expires_at: Moment | None = None
    updates_until: dt.date | None = None
    entitlements: Entitlements | None = None
    overage: Overage | None = None
    activity_window_days: WindowDays | None = None
    grace_days: TermDays | None = None
    lease_minutes: LeaseMinutes | None = Field(
        default=None, description="A floating seat's lease; null makes the licence non-floating"
    )
    external_ref: ExternalRef | None = None


class LicenceOut(ResponseModel):
    id: uuid.UUID
    product: str
    key_last4: str
    max_machines: int
    max_users: int | None
    expires_at: dt.datetime | None
    updates_until: dt.date | None
    entitlements: list[str]
    overage: Overage
    activity_window_days: int
    trial_days: int | None
    grace_days: int | None
    floating: bool
    lease_minutes: int | None
    status: EffectiveStatus = Field(
        description="`expired` once an active licence's `expires_at` has passed"
    )
    external_ref: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, licence: Licence, now: dt.datetime) -> LicenceOut:
        """The licence as staff see it at `now`: its status is the effective one."""
        return cls.model_validate(licence).model_copy(update={"status": licence.status_at(now)})


class LicenceCreated(LicenceOut):
    key: str = Field(description="The licence key; shown this once and never again")


class LicencePage(ResponseModel):
    items: list[LicenceOut]
    next_cursor: str | None


# Staff see machine ids by this many hex digits: enough to tell a licence's
# machines apart and to retire one, no more.
SHORT_MACHINE_ID = 12


def short_machine_id(machine_id: str) -> str:
    return machine_id[:SHORT_MACHINE_ID]


# A machine id, or enough of its start (12 hex digits, as staff are shown) to name it.
MACHINE_REF_PATTERN = r"^[0-9a-f]{12,32}$"
MachineRef = Annotated[str, StringConstraints(pattern=MACHINE_REF_PATTERN)]


class MachineOut(ResponseModel):
    """A machine by its licence-scoped pseudonym, shortened as staff see it everywhere;
    `active` means it counts against the limit."""

    machine_id: str = Field(
        description="The first 12 hex digits of the machine's pseudonym: enough to retire it"
    )
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    last_version: str
    last_user_count: int
    seat: str
    retired_at: dt.datetime | None
    active: bool

    @classmethod
    def of(cls, machine: Machine, *, active: bool) -> MachineOut:
        fields = {name: getattr(machine, name) for name in cls.model_fields if name != "active"}
        short = {"machine_id": short_machine_id(machine.machine_id), "active": active}
        return cls.model_validate(fields | short)


class LicenceDetail(LicenceOut):
    machines: list[MachineOut] = Field(description="The most recently seen first")
    machines_total: int
