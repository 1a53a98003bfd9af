"""POST /v1/ping, served ahead of the framework, and GET /v1/keys.

The ping is most of the traffic, so it is a plain ASGI app in front of
FastAPI: no framework middleware, routing table, dependency solving or
response classes between the socket and the ping service. Its OpenAPI entry is added by `document`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from starlette.types import Receive, Scope, Send

from app.core.components import components_of
from app.core.deps import KeyDirectoryDep, Now
from app.core.errors import (
    CallhomeError,
    InvalidInput,
    PayloadTooLarge,
    RateLimited,
    StoreUnavailable,
    problem_response,
    problem_responses,
)
from app.core.network import client_address
from app.core.settings import Settings
from app.core.signing import SIGNATURE_HEADER
from app.ping.schemas import PingAnswer, PingRequest, PublicKeys
from app.ping.service import PingService

PING_PATH = "/v1/ping"
MAX_PING_BYTES = 4096
_SIGNATURE_HEADER = SIGNATURE_HEADER.lower().encode()
_JSON = (b"content-type", b"application/json")

router = APIRouter(prefix="/v1", tags=["ping"])


class BadContentLength(CallhomeError):
    status = 400
    code = "bad-content-length"
    title = "Content-Length is not a number"


class NotJson(CallhomeError):
    # A browser may send text/plain (or no type) across sites without asking first:
    # only a JSON body, which it must ask to send, can be a ping.
    status = 415
    code = "unsupported-media-type"
    title = "A ping is sent as application/json"


class PostOnly(CallhomeError):
    status = 405
    code = "http-405"
    title = "Method not allowed"

    def __init__(self) -> None:
        super().__init__(headers={"Allow": "POST"})


PING_ERRORS = (
    BadContentLength,
    NotJson,
    PayloadTooLarge,
    InvalidInput,
    RateLimited,
    StoreUnavailable,
)


def is_json(content_type: bytes | None) -> bool:
    """`application/json`, with or without parameters (`; charset=utf-8`)."""
    if content_type is None:
        return False
    return content_type.partition(b";")[0].strip().lower() == b"application/json"


@dataclass(frozen=True)
class ServedBy:
    """Stands for a framework route in the scope, so the access log names the ping's."""

    path: str


async def read_body(
    receive: Receive, declared_length: bytes | None, limit: int, *, what: str = "A ping"
) -> bytes:
    """The body, refused as soon as it passes `limit` bytes, however it is sent; the refusal
    names `what` was too large."""
    if declared_length is not None:
        if not declared_length.isdigit():
            raise BadContentLength()
        if int(declared_length) > limit:
            raise PayloadTooLarge(f"{what} is at most {limit} bytes")
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"{what} is at most {limit} bytes")
        if not message.get("more_body", False):
            return body


def is_ping(scope: Scope) -> bool:
    return bool(scope["type"] == "http" and scope["path"] == PING_PATH)


async def answer_ping(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app of /v1/ping, served ahead of the framework (`app.main.Callhome`)."""
    scope["route"] = ServedBy(PING_PATH)
    components = components_of(scope["app"].state)
    declared_length = content_type = None
    forwarded_for: list[str] = []
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared_length = value
        elif name == b"content-type":
            content_type = value
        elif name == b"x-forwarded-for":
            forwarded_for.append(value.decode("latin-1"))
    peer = scope.get("client")
    try:
        if scope["method"] != "POST":
            raise PostOnly()
        if not is_json(content_type):
            raise NotJson()
        body = await read_body(receive, declared_length, MAX_PING_BYTES)
        address = client_address(
            peer[0] if peer else None, forwarded_for, components.get(Settings).trusted_proxies
        )
        answer = await components.get(PingService).answer(body, address)
    except CallhomeError as error:
        problem = problem_response(
            error.status, error.code, error.title, error.detail, error.headers, **error.extra
        )
        await problem(scope, receive, send)
        return
    headers = [
        _JSON,
        (b"content-length", str(len(answer.body)).encode()),
        (_SIGNATURE_HEADER, answer.signature.encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def document(openapi: dict[str, Any]) -> None:
    """Add the ping to the OpenAPI document, as if it were a framework route."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for model in (PingRequest, PingAnswer):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    responses: dict[str, Any] = {
        "200": {
            "description": "The signed verdict, for every well-formed ping",
            "headers": {SIGNATURE_HEADER: {"schema": {"type": "string"}}},
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PingAnswer"}}
            },
        }
    }
    responses.update({str(code): spec for code, spec in problem_responses(*PING_ERRORS).items()})
    openapi.setdefault("paths", {})[PING_PATH] = {
        "post": {
            "tags": ["ping"],
            "summary": "Ping",
            "description": "An install calls home. The answer is signed over its exact bytes.",
            "operationId": "ping",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PingRequest"}}
                },
            },
            "responses": responses,
        }
    }


@router.get("/keys")
async def keys(directory: KeyDirectoryDep, now: Now) -> PublicKeys:
    """The keys verdicts are signed with, and the key list the root key vouches for them in:
    SDKs pin the root and follow the list (docs/protocol.md)."""
    return PublicKeys.model_validate(directory.answer(now))
