"""The SQL of licences and their machines, including the one definition of a held seat."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.database import dialect_insert, execute_core
from app.core.json import dumps
from app.core.pagination import newest_first
from app.licences.models import (
    CustomerSession,
    EffectiveStatus,
    Licence,
    LicenceChanges,
    LicenceKey,
    LicenceStatus,
    Machine,
    Seat,
)


def seat_held(seen_after: Any, now: dt.datetime | ColumnElement[Any]) -> ColumnElement[bool]:
    """A machine holds a seat: granted, not retired, and last seen after `seen_after` or
    activated offline by a licence file that has not ended by `now`.

    `seen_after` is now less the licence's seat window: a datetime for one
    licence, or an expression when many licences are judged at once.
    """
    return and_(
        Machine.seat == Seat.GRANTED.value,
        Machine.retired_at.is_(None),
        or_(Machine.last_seen_at > seen_after, Machine.offline_until > now),
    )


def holds_seat(
    licence_id: uuid.UUID | ColumnElement[Any],
    seen_after: dt.datetime | ColumnElement[Any],
    now: dt.datetime | ColumnElement[Any],
) -> ColumnElement[bool]:
    """Machines of this licence counted against its limit now; `seen_after` is now less
    the licence's seat window. Values, or parameters bound when a statement built once runs."""
    return and_(Machine.licence_id == licence_id, seat_held(seen_after, now))


def window_of(licence: Licence) -> dt.timedelta:
    return licence.seat_window


# -- licences -----------------------------------------------------------------


async def get_licence(
    session: AsyncSession, licence_id: uuid.UUID, *, lock: bool = False
) -> Licence | None:
    return await session.get(Licence, licence_id, with_for_update=lock)


# FOR NO KEY UPDATE serialises seat checks on this licence without blocking
# the batch writer, whose machine upserts only need a key-share lock.
LOCK_FOR_SEAT_CHECK = (
    select(Licence).where(Licence.id == bindparam("licence_id")).with_for_update(key_share=True)
)


async def lock_for_seat_check(session: AsyncSession, licence_id: uuid.UUID) -> Licence | None:
    licence: Licence | None = await session.scalar(LOCK_FOR_SEAT_CHECK, {"licence_id": licence_id})
    return licence


LICENCE_OF_KEY = select(LicenceKey.licence_id).where(LicenceKey.key_hash == bindparam("key_hash"))


async def find_by_key_hash(session: AsyncSession, key_hash: str) -> Licence | None:
    # Two statements, not a join: on a distributed store the key's row is on every node
    # and the licence on one shard, which only a lookup by its id reaches directly.
    found = await execute_core(session, LICENCE_OF_KEY, {"key_hash": key_hash})
    licence_id = found.scalar()
    if licence_id is None:
        return None
    return await session.get(Licence, licence_id)


async def active_licences(
    session: AsyncSession, licence_ids: Sequence[uuid.UUID], active_status: str
) -> list[Licence]:
    return list(
        await session.scalars(
            select(Licence).where(Licence.id.in_(licence_ids), Licence.status == active_status)
        )
    )


async def list_licences(
    session: AsyncSession,
    *,
    product: str | None,
    status: EffectiveStatus | None,
    now: dt.datetime,
    key_last4: str | None,
    external_ref: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Licence], str | None]:
    """Newest first, by keyset; each filter given narrows the list."""
    query = select(Licence)
    if product:
        query = query.where(Licence.product == product)
    if status:
        query = query.where(_has_effective_status(status, now))
    if key_last4:
        query = query.where(Licence.key_last4 == key_last4)
    if external_ref:
        query = query.where(Licence.external_ref == external_ref)
    return await newest_first(
        session, query, Licence.created_at, Licence.id, cursor=cursor, limit=limit
    )


def _has_effective_status(status: EffectiveStatus, now: dt.datetime) -> ColumnElement[bool]:
    """SQL for `Licence.status_at(now) == status`."""
    if status in (EffectiveStatus.SUSPENDED, EffectiveStatus.REVOKED):
        return Licence.status == status.value
    is_active = Licence.status == LicenceStatus.ACTIVE.value
    if status is EffectiveStatus.EXPIRED:
        return and_(is_active, Licence.expires_at <= now)
    return and_(is_active, or_(Licence.expires_at.is_(None), Licence.expires_at > now))


async def ending_between(
    session: AsyncSession, after: dt.datetime, until: dt.datetime
) -> list[Licence]:
    """Active licences whose expires_at lies in (after, until]."""
    return list(
        await session.scalars(
            select(Licence)
            .where(
                Licence.status == LicenceStatus.ACTIVE.value,
                Licence.expires_at > after,
                Licence.expires_at <= until,
            )
            .order_by(Licence.expires_at, Licence.id)
        )
    )


async def count_licences(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Licence)) or 0)


async def count_machines(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Machine)) or 0)


async def existing_licence_ids(
    connection: AsyncConnection, licence_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these licences still exist, read through the driver on PostgreSQL."""
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        rows = await driver.fetch("SELECT id FROM licences WHERE id = ANY($1::uuid[])", licence_ids)
        return {row["id"] for row in rows}
    async with connection.begin():
        found = await connection.scalars(select(Licence.id).where(Licence.id.in_(licence_ids)))
        return set(found)


# -- machines and seats --------------------------------------------------------


SEATED_MACHINES = select(Machine.machine_id, Machine.last_seen_at, Machine.offline_until).where(
    holds_seat(bindparam("licence_id"), bindparam("seen_after"), bindparam("now"))
)


async def seated_machines(
    session: AsyncSession, licence_id: uuid.UUID, window: dt.timedelta, now: dt.datetime
) -> dict[str, dt.datetime]:
    """Each machine holding a seat now, with its last sighting; for a machine activated
    offline, the sighting that would keep its seat exactly until its licence file ends."""
    rows = await execute_core(
        session,
        SEATED_MACHINES,
        {"licence_id": licence_id, "seen_after": now - window, "now": now},
    )
    return {
        machine_id: last_seen if offline_until is None else max(last_seen, offline_until - window)
        for machine_id, last_seen, offline_until in rows
    }


async def seated_machine_rows(
    session: AsyncSession, licence: Licence, now: dt.datetime
) -> list[Machine]:
    """The machines holding a seat now, the most recently seen first."""
    return list(
        await session.scalars(
            select(Machine)
            .where(holds_seat(licence.id, now - window_of(licence), now))
            .order_by(Machine.last_seen_at.desc())
        )
    )


async def seat_count_and_peak_users(
    session: AsyncSession, licence: Licence, now: dt.datetime
) -> tuple[int, int]:
    machines, peak_users = (
        await session.execute(
            select(func.count(), func.max(Machine.last_user_count)).where(
                holds_seat(licence.id, now - window_of(licence), now)
            )
        )
    ).one()
    return int(machines), int(peak_users or 0)


async def machines_of(session: AsyncSession, licence_id: uuid.UUID, *, limit: int) -> list[Machine]:
    """A licence's machines, the most recently seen first."""
    return list(
        await session.scalars(
            select(Machine)
            .where(Machine.licence_id == licence_id)
            .order_by(Machine.last_seen_at.desc(), Machine.machine_id)
            .limit(limit)
        )
    )


async def count_machines_of(session: AsyncSession, licence_id: uuid.UUID) -> int:
    total = await session.scalar(
        select(func.count()).select_from(Machine).where(Machine.licence_id == licence_id)
    )
    return int(total or 0)


async def get_machine(
    session: AsyncSession, licence_id: uuid.UUID, machine_id: str, *, lock: bool = False
) -> Machine | None:
    return await session.get(Machine, (licence_id, machine_id), with_for_update=lock)


async def hold_seat_offline(
    session: AsyncSession, licence_id: uuid.UUID, machine_id: str, until: dt.datetime
) -> None:
    """The machine keeps its seat until `until` without a ping (a later file may end sooner:
    renewing with fewer days shortens the hold)."""
    await session.execute(
        update(Machine)
        .where(Machine.licence_id == licence_id, Machine.machine_id == machine_id)
        .values(offline_until=until)
    )


async def machines_by_prefix(
    session: AsyncSession, licence_id: uuid.UUID, prefix: str, *, limit: int
) -> list[Machine]:
    """Machines whose id starts with `prefix` (hex only, so LIKE sees no wildcards), locked."""
    return list(
        await session.scalars(
            select(Machine)
            .where(Machine.licence_id == licence_id, Machine.machine_id.like(f"{prefix}%"))
            .limit(limit)
            .with_for_update()
        )
    )


async def machines_by_ids(
    session: AsyncSession, licence_id: uuid.UUID, machine_ids: list[str], *, limit: int
) -> list[Machine]:
    """These machines of the licence, the most recently seen first."""
    return list(
        await session.scalars(
            select(Machine)
            .where(Machine.licence_id == licence_id, Machine.machine_id.in_(machine_ids))
            .order_by(Machine.last_seen_at.desc())
            .limit(limit)
        )
    )


# -- the machines upsert -------------------------------------------------------


class Sighting(Protocol):
    """A machine seen in a ping: what the upsert records of it."""

    @property
    def licence_id(self) -> uuid.UUID: ...
    @property
    def machine_id(self) -> str: ...
    @property
    def received_at(self) -> dt.datetime: ...
    @property
    def version(self) -> str: ...
    @property
    def user_count(self) -> int: ...
    @property
    def seat(self) -> str: ...


def postgresql_sightings_upsert(parameter: int) -> str:
    """The batch writer's upsert on PostgreSQL, its machines bound as one JSON document
    (`sightings_document`) at `$parameter`: one statement however many machines. On
    conflict the machine keeps its seat and first sighting: only the seat check decides
    seats."""
    return f"""
INSERT INTO machines AS m
    (licence_id, machine_id, first_seen_at, last_seen_at, last_version, last_user_count, seat)
SELECT licence_id, machine_id, seen_at, seen_at, version, user_count, seat
FROM json_to_recordset(${parameter}::json) AS batch (licence_id uuid, machine_id varchar,
    seen_at timestamptz, version varchar, user_count int, seat varchar)
ON CONFLICT (licence_id, machine_id) DO UPDATE SET
    last_seen_at = GREATEST(m.last_seen_at, EXCLUDED.last_seen_at),
    last_version = EXCLUDED.last_version,
    last_user_count = EXCLUDED.last_user_count
"""


# Built once per kind: building it (its `excluded` columns) took longer than running it,
# for every newcomer's seat check and every batch on SQLite.
@functools.cache
def machines_upsert(dialect_name: str, *, decides_seat: bool) -> Any:
    """INSERT … ON CONFLICT of machines, recording each one's latest sighting.

    The seat check decides the seat (and un-retires a machine it admits); the
    batch writer only records sightings, keeping the seat, and never moves
    last_seen_at back for a ping that arrived late.
    """
    statement = dialect_insert(dialect_name)(Machine)
    excluded = statement.excluded
    later = func.greatest if dialect_name == "postgresql" else func.max
    updated: dict[str, Any] = {
        "last_seen_at": (
            excluded.last_seen_at
            if decides_seat
            else later(Machine.last_seen_at, excluded.last_seen_at)
        ),
        "last_version": excluded.last_version,
        "last_user_count": excluded.last_user_count,
    }
    if decides_seat:
        updated |= {"seat": excluded.seat, "retired_at": None}
    return statement.on_conflict_do_update(
        index_elements=["licence_id", "machine_id"], set_=updated
    )


async def record_seat(
    session: AsyncSession,
    licence_id: uuid.UUID,
    machine_id: str,
    seat: Seat,
    *,
    version: str,
    user_count: int,
    now: dt.datetime,
) -> None:
    """The seat check's verdict on one machine, seen now."""
    await execute_core(
        session,
        machines_upsert(session.get_bind().dialect.name, decides_seat=True),
        {
            "licence_id": licence_id,
            "machine_id": machine_id,
            "first_seen_at": now,
            "last_seen_at": now,
            "last_version": version,
            "last_user_count": user_count,
            "seat": seat.value,
            "retired_at": None,
        },
    )


def sightings_document(sightings: Sequence[Sighting]) -> str:
    """The JSON `postgresql_sightings_upsert` binds. `sightings` come deduplicated and
    sorted: one statement never touches a row twice, and concurrent writers lock rows in
    the same order."""
    return dumps(
        [
            {
                "licence_id": m.licence_id,
                "machine_id": m.machine_id,
                "seen_at": m.received_at,
                "version": m.version,
                "user_count": m.user_count,
                "seat": m.seat,
            }
            for m in sightings
        ]
    ).decode()


async def record_sightings(connection: AsyncConnection, sightings: Sequence[Sighting]) -> None:
    """The batch writer's upsert through SQLAlchemy (SQLite); deduplicated and sorted too."""
    await connection.execute(
        machines_upsert(connection.dialect.name, decides_seat=False),
        [
            {
                "licence_id": m.licence_id,
                "machine_id": m.machine_id,
                "first_seen_at": m.received_at,
                "last_seen_at": m.received_at,
                "last_version": m.version,
                "last_user_count": m.user_count,
                "seat": m.seat,
            }
            for m in sightings
        ],
    )


# -- the key holder's page sessions ----------------------------------------------


async def forget_customer_sessions_ended(
    session: AsyncSession, *, now: dt.datetime, idle_since: dt.datetime
) -> None:
    await session.execute(
        delete(CustomerSession).where(
            or_(CustomerSession.expires_at <= now, CustomerSession.last_used_at <= idle_since)
        )
    )


async def customer_session_for_update(
    session: AsyncSession, id_hash: str
) -> CustomerSession | None:
    return await session.get(CustomerSession, id_hash, with_for_update=True)


async def delete_customer_sessions_of(session: AsyncSession, licence_id: uuid.UUID) -> int:
    result = await session.execute(
        delete(CustomerSession).where(CustomerSession.licence_id == licence_id)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def delete_customer_session(session: AsyncSession, id_hash: str) -> None:
    await session.execute(delete(CustomerSession).where(CustomerSession.id_hash == id_hash))


async def count_licence_change(session: AsyncSession) -> None:
    await session.execute(update(LicenceChanges).values(counter=LicenceChanges.counter + 1))


async def licence_changes_counted(connection: AsyncConnection) -> int | None:
    counted: int | None = await connection.scalar(select(LicenceChanges.counter))
    return counted
