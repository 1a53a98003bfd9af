"""POST /v1/ping and GET /v1/keys: public, unauthenticated, signed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.core.errors import (
    CallhomeError,
    InvalidInput,
    PayloadTooLarge,
    RateLimited,
    StoreUnavailable,
    problem_responses,
)
from app.core.network import client_address
from app.core.signing import SIGNATURE_HEADER
from app.ping.schemas import PingAnswer, PingRequest, PublicKeys

MAX_PING_BYTES = 4096

router = APIRouter(prefix="/v1", tags=["ping"])


class BadContentLength(CallhomeError):
    status = 400
    code = "bad-content-length"
    title = "Content-Length is not a number"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` bytes, however it is sent."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadContentLength()
        if int(declared) > limit:
            raise PayloadTooLarge(f"A ping is at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"A ping is at most {limit} bytes")
    return bytes(body)


@router.post(
    "/ping",
    responses={
        200: {"model": PingAnswer, "description": "The signed verdict, for every valid ping"},
        **problem_responses(
            BadContentLength, PayloadTooLarge, InvalidInput, RateLimited, StoreUnavailable
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PingRequest.model_json_schema()}},
        }
    },
)
async def ping(request: Request) -> Response:
    """An install calls home. The answer is signed: see the Callhome-Signature header."""
    body = await read_body(request, MAX_PING_BYTES)
    state = request.app.state
    address = client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        state.settings.trusted_proxies,
    )
    answer = await state.pings.answer(body, address)
    return Response(
        answer.body, media_type="application/json", headers={SIGNATURE_HEADER: answer.signature}
    )


@router.get("/keys")
async def keys(request: Request) -> PublicKeys:
    """The public keys verdicts are signed with; SDKs pin them."""
    signer = request.app.state.signer
    return PublicKeys.model_validate(
        {
            "keys": [
                {
                    "keyid": signer.key_id,
                    "algorithm": "ed25519",
                    "public_key": signer.public_key_b64,
                }
            ]
        }
    )
