"""The privacy routes: the public manifest, and a licence's export and erasure for staff."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import IO, Annotated

from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.responses import StreamingResponse

from app.core.deps import DatabaseDep, Now, SettingsDep, WriteSession
from app.core.errors import Forbidden, InvalidInput, NotFound, problem_responses
from app.privacy import erasure, export, requests
from app.privacy.auth import PrivacyReader, PrivacyWriter
from app.privacy.manifest import manifest
from app.privacy.schemas import ErasureOut, ErasureRequestList, Manifest

public_router = APIRouter(tags=["privacy"])
admin_router = APIRouter(
    prefix="/v1/admin/licences",
    tags=["privacy"],
    responses=problem_responses(InvalidInput, Forbidden, NotFound),
)

requests_router = APIRouter(
    prefix="/v1/admin/erasure-requests",
    tags=["privacy"],
    responses=problem_responses(InvalidInput, Forbidden, NotFound),
)

CHUNK_BYTES = 64 * 1024
DeleteLicence = Annotated[bool, Query(description="Delete the licence itself too")]


@public_router.get("/v1/privacy")
async def privacy_manifest(settings: SettingsDep) -> Manifest:
    """Every field callhome stores: its form, its purpose, how long it is kept."""
    return manifest(settings)


async def _chunks(document: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := document.read(CHUNK_BYTES):
            yield chunk
    finally:
        document.close()


def json_download(document: IO[bytes], filename: str) -> StreamingResponse:
    """A spooled JSON document sent as a download, closed once sent."""
    return StreamingResponse(
        _chunks(document),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@admin_router.get(
    "/{licence_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}, "description": "The document"}},
)
async def export_licence(
    licence_id: uuid.UUID, staff: PrivacyReader, session: WriteSession, now: Now
) -> StreamingResponse:
    """Everything held about the licence, as one JSON document (audited)."""
    document = await export.export_licence(session, licence_id, actor=staff.name, now=now)
    return json_download(document, f"licence-{licence_id}.json")


@admin_router.delete("/{licence_id}/data")
async def erase_licence_data(
    licence_id: uuid.UUID,
    staff: PrivacyWriter,
    session: WriteSession,
    database: DatabaseDep,
    now: Now,
    after: BackgroundTasks,
    delete_licence: DeleteLicence = False,
) -> ErasureOut:
    """Erase every row about the licence's use, in one transaction (audited, counts only)."""
    erased = await erasure.erase_licence_data(
        session,
        licence_id,
        delete_licence=delete_licence,
        actor=staff.name,
        now=now,
    )
    # Runs once the answer is out, the erasure committed by then.
    after.add_task(erasure.settle, database)
    return ErasureOut.model_validate({"licence_id": str(licence_id), **erased.document()})


@requests_router.get("")
async def list_erasure_requests(_: PrivacyWriter, session: WriteSession) -> ErasureRequestList:
    """Erasure requests the key holders made on the /my/ page, awaiting confirmation."""
    pending = await requests.pending(session)
    return ErasureRequestList.model_validate({"items": pending})


@requests_router.post("/{licence_id}/confirm")
async def confirm_erasure_request(
    licence_id: uuid.UUID,
    staff: PrivacyWriter,
    session: WriteSession,
    database: DatabaseDep,
    now: Now,
    after: BackgroundTasks,
    delete_licence: DeleteLicence = False,
) -> ErasureOut:
    """Erase the licence's data as its key holder asked (audited, counts only)."""
    erased = await requests.confirm(
        session, licence_id, delete_licence=delete_licence, actor=staff.name, now=now
    )
    after.add_task(erasure.settle, database)
    return ErasureOut.model_validate({"licence_id": str(licence_id), **erased.document()})
