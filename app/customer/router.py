"""The customer's API calls: deactivation, authorised by the licence key alone, and the staff
route that turns an offline activation request into a licence file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.core.deps import Now, PseudonymsDep, SettingsDep, SignerDep, WriteSession
from app.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    StoreUnavailable,
    problem_responses,
)
from app.core.network import caller_address
from app.core.signing import SIGNATURE_HEADER
from app.customer import offline, service
from app.customer.auth import OfflineIssuer
from app.customer.schemas import DeactivateAnswer, DeactivateRequest, OfflineRequest
from app.licences.lookup import LicenceLookupDep
from app.ping.router import MAX_PING_BYTES, BadContentLength, read_body

router = APIRouter(prefix="/v1/machines", tags=["customer"])
admin_router = APIRouter(prefix="/v1/admin", tags=["customer"])


async def _body(request: Request, limit: int, what: str) -> bytes:
    length = request.headers.get("content-length")
    return await read_body(
        request.receive, length.encode() if length is not None else None, limit, what=what
    )


@router.post(
    "/deactivate",
    response_model=DeactivateAnswer,
    responses={
        200: {"headers": {SIGNATURE_HEADER: {"schema": {"type": "string"}}}},
        **problem_responses(
            BadContentLength, PayloadTooLarge, InvalidInput, RateLimited, StoreUnavailable
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": DeactivateRequest.model_json_schema()}},
        }
    },
)
async def deactivate(
    request: Request,
    session: WriteSession,
    lookup: LicenceLookupDep,
    pseudonyms: PseudonymsDep,
    signer: SignerDep,
    settings: SettingsDep,
    now: Now,
) -> Response:
    """Free this machine's seat at once; a second call is harmless. Signed like the ping."""
    body = await _body(request, MAX_PING_BYTES, "A deactivation")
    address = caller_address(request, settings.trusted_proxies)
    answer = await service.deactivate(
        session, body, address, lookup=lookup, pseudonyms=pseudonyms, signer=signer, now=now
    )
    return Response(
        answer.body, media_type="application/json", headers={SIGNATURE_HEADER: answer.signature}
    )


OfflineDays = Annotated[
    int | None,
    Query(ge=1, le=3650, description="Days the file runs (default: CALLHOME_OFFLINE_LICENCE_DAYS)"),
]


@admin_router.post(
    "/offline-activations",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}, "description": "The signed licence file"},
        **problem_responses(
            BadContentLength, PayloadTooLarge, InvalidInput, Forbidden, NotFound, Conflict
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": OfflineRequest.model_json_schema()}},
        }
    },
)
async def issue_licence_file(
    request: Request,
    staff: OfflineIssuer,
    session: WriteSession,
    pseudonyms: PseudonymsDep,
    signer: SignerDep,
    settings: SettingsDep,
    now: Now,
    days: OfflineDays = None,
) -> Response:
    """Seat the machine of an offline activation request and sign its licence file (audited).
    Renewing is the same call."""
    body = await _body(request, offline.MAX_REQUEST_BYTES, "An activation request")
    issued = await offline.issue(
        session,
        offline.parse_request(body),
        days=days,
        default_days=settings.offline_licence_days,
        pseudonyms=pseudonyms,
        signer=signer,
        actor=staff.name,
        now=now,
    )
    return Response(
        issued.body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="machine.lic"'},
    )
