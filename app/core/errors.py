"""One base exception and one handler that renders RFC 9457 problem+json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.core.json import dumps

PROBLEM_JSON = "application/problem+json"


class CallhomeError(Exception):
    """An error the API reports to its caller; its message never echoes input."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra or {}


class NotFound(CallhomeError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(CallhomeError):
    status = 409
    code = "conflict"
    title = "Conflict"


class InvalidInput(CallhomeError):
    status = 422
    code = "invalid-input"
    title = "Invalid input"


class Unauthenticated(CallhomeError):
    status = 401
    code = "unauthenticated"
    title = "A valid staff token is required"

    def __init__(self, detail: str | None = None):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(CallhomeError):
    status = 403
    code = "forbidden"
    title = "The token lacks the scope this needs"


class PayloadTooLarge(CallhomeError):
    status = 413
    code = "payload-too-large"
    title = "Request body too large"


class RateLimited(CallhomeError):
    status = 429
    code = "rate-limited"
    title = "Too many requests"

    def __init__(self, retry_after_s: int):
        super().__init__(headers={"Retry-After": str(retry_after_s)})


class StoreUnavailable(CallhomeError):
    status = 503
    code = "store-unavailable"
    title = "The store is unavailable, try again later"

    def __init__(self, retry_after_s: int):
        super().__init__(headers={"Retry-After": str(retry_after_s)})


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = {"type": f"urn:callhome:problem:{code}", "title": title, "status": status}
    body["detail"] = detail
    body.update(extra)
    return Response(dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_responses(*errors: type[CallhomeError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries generated from the error classes a route raises."""
    return {
        error.status: {
            "description": error.title,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for error in errors
    }


def describe_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Where and what kind of error: never the submitted value ("input"),
    nor pydantic's message, which can quote it."""
    return [
        {"location": ".".join(str(part) for part in error.get("loc", ())), "type": error["type"]}
        for error in errors
    ]


async def render_problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, CallhomeError)
    return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.headers, **exc.extra)


async def _handle_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        422,
        InvalidInput.code,
        InvalidInput.title,
        "The request does not match the contract",
        errors=describe_errors(exc.errors()),
    )


async def _handle_http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # The framework's answer to a body it cannot decode (not UTF-8, say): to
        # the caller that is invalid input like any other breach of the contract.
        return problem_response(
            422, InvalidInput.code, InvalidInput.title, "The request body cannot be read"
        )
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    return problem_response(
        exc.status_code, f"http-{exc.status_code}", title, title, dict(exc.headers or {})
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CallhomeError, render_problem)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_error)


def problem_schema() -> dict[str, Any]:
    """The JSON Schema of a problem document, for the OpenAPI components."""
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}, "type": {"type": "string"}},
                },
            },
        },
    }
