"""Staff API for licences: thin wiring over the licence service."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.deps import Now, PseudonymsDep, ReadSession, SettingsDep, WriteSession
from app.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    problem_response,
    problem_responses,
)
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, CursorQuery
from app.core.schemas import PRINTABLE_PATTERN, PRODUCT_PATTERN
from app.licences import service
from app.licences.auth import LicencesReader, LicencesWriter
from app.licences.models import EffectiveStatus, Licence
from app.licences.schemas import (
    ExternalRef,
    LicenceChange,
    LicenceCreate,
    LicenceCreated,
    LicenceDetail,
    LicenceKeyLookup,
    LicenceOut,
    LicencePage,
    MachineOut,
    MachineRef,
)

router = APIRouter(
    prefix="/v1/admin/licences",
    tags=["licences"],
    responses=problem_responses(InvalidInput, Forbidden),
)


@router.post("", status_code=201, responses=problem_responses(Conflict))
async def create_licence(
    data: LicenceCreate,
    staff: LicencesWriter,
    session: WriteSession,
    pseudonyms: PseudonymsDep,
    settings: SettingsDep,
    now: Now,
) -> LicenceCreated:
    created = await service.create_licence(
        session,
        pseudonyms,
        data,
        default_window_days=settings.activity_window_days,
        actor=staff.name,
        now=now,
    )
    return LicenceCreated.model_validate(
        {**LicenceOut.of(created.licence, now).model_dump(), "key": created.key}
    )


@router.get("")
async def list_licences(
    _: LicencesReader,
    session: ReadSession,
    now: Now,
    product: Annotated[str | None, Query(pattern=PRODUCT_PATTERN)] = None,
    status: EffectiveStatus | None = None,
    key_last4: Annotated[
        str | None, Query(min_length=4, max_length=4, pattern=PRINTABLE_PATTERN)
    ] = None,
    external_ref: Annotated[ExternalRef | None, Query()] = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> LicencePage:
    wanted = service.LicenceFilter(
        product=product, status=status, key_last4=key_last4, external_ref=external_ref
    )
    licences, next_cursor = await service.list_licences(
        session, wanted, now=now, cursor=cursor, limit=limit
    )
    return LicencePage(
        items=[LicenceOut.of(licence, now) for licence in licences],
        next_cursor=next_cursor,
    )


@router.post("/lookup", response_model=LicenceDetail, responses=problem_responses(NotFound))
async def look_up_licence(
    lookup: LicenceKeyLookup,
    staff: LicencesReader,
    session: WriteSession,
    pseudonyms: PseudonymsDep,
    now: Now,
) -> LicenceDetail | Response:
    """The licence a full key opens. The key travels in the body, never in a URL (URLs end
    up in logs); every lookup, found or not, is audited without the key."""
    licence = await service.look_up_by_key(
        session, pseudonyms, lookup.key, actor=staff.name, now=now
    )
    if licence is None:
        # answered, not raised: the audit entry of a miss must commit too
        error = NotFound("No licence has this key")
        return problem_response(error.status, error.code, error.title, error.detail)
    return await _detail(session, licence, now)


@router.get("/{licence_id}", responses=problem_responses(NotFound))
async def show_licence(
    licence_id: uuid.UUID, _: LicencesReader, session: ReadSession, now: Now
) -> LicenceDetail:
    return await _detail(session, await service.get_licence(session, licence_id), now)


async def _detail(session: AsyncSession, licence: Licence, now: dt.datetime) -> LicenceDetail:
    listed = await service.list_machines(session, licence)
    return LicenceDetail.model_validate(
        LicenceOut.of(licence, now).model_dump()
        | {
            "machines": [
                MachineOut.of(machine, active=service.is_active(machine, licence, now))
                for machine in listed.machines
            ],
            "machines_total": listed.total,
        }
    )


@router.delete("/{licence_id}/machines/{machine}", responses=problem_responses(NotFound, Conflict))
async def retire_machine(
    licence_id: uuid.UUID,
    machine: Annotated[MachineRef, Path(description="The machine id, or its first 12+ digits")],
    staff: LicencesWriter,
    session: WriteSession,
    now: Now,
) -> MachineOut:
    """Retire a machine (hardware replaced): it stops counting against the limit at once."""
    retired = await service.retire_machine(session, licence_id, machine, actor=staff.name, now=now)
    # Retired: it holds no seat, so it is not active.
    return MachineOut.of(retired, active=False)


@router.patch("/{licence_id}", responses=problem_responses(NotFound, Conflict))
async def change_licence(
    licence_id: uuid.UUID,
    change: LicenceChange,
    staff: LicencesWriter,
    session: WriteSession,
    now: Now,
) -> LicenceOut:
    licence = await service.change_licence(session, licence_id, change, actor=staff.name, now=now)
    return LicenceOut.of(licence, now)
