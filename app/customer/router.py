"""The customer's public calls: deactivation, authorised by the licence key alone."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.core.deps import Now, PseudonymsDep, SettingsDep, SignerDep, WriteSession
from app.core.errors import (
    InvalidInput,
    PayloadTooLarge,
    RateLimited,
    StoreUnavailable,
    problem_responses,
)
from app.core.network import client_address
from app.core.signing import SIGNATURE_HEADER
from app.customer import service
from app.customer.schemas import DeactivateAnswer, DeactivateRequest
from app.ping.router import MAX_PING_BYTES, BadContentLength, read_body
from app.ping.service import PingServiceDep

router = APIRouter(prefix="/v1/machines", tags=["customer"])


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
    pings: PingServiceDep,
    pseudonyms: PseudonymsDep,
    signer: SignerDep,
    settings: SettingsDep,
    now: Now,
) -> Response:
    """Free this machine's seat at once; a second call is harmless. Signed like the ping."""
    length = request.headers.get("content-length")
    body = await read_body(
        request.receive,
        length.encode() if length is not None else None,
        MAX_PING_BYTES,
        what="A deactivation",
    )
    peer = request.client.host if request.client else None
    address = client_address(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies)
    answer = await service.deactivate(
        session, body, address, pings=pings, pseudonyms=pseudonyms, signer=signer, now=now
    )
    return Response(
        answer.body, media_type="application/json", headers={SIGNATURE_HEADER: answer.signature}
    )
