"""The staff web page as an app of its own, mounted under /staff: HTML errors, strict headers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from app.core.auth.browser import served_over_https
from app.core.auth.dependencies import STAFF_COOKIE, SignInRequired
from app.core.components import components_of
from app.core.errors import CallhomeError
from app.core.outage import install_store_trouble_handler
from app.core.settings import Settings
from app.web.pages import STATIC_DIR, SecurityHeaders, page_url, render
from app.web.router import router

# Plain words for the page heading; the detail says what exactly went wrong.
_HEADINGS = {
    401: "Sign-in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Not possible now",
    422: "Invalid input",
    429: "Too many requests",
    503: "Try again shortly",
}


def _error_page(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None
) -> Response:
    title = _HEADINGS.get(status, "Something went wrong")
    return render(
        request,
        "error.html",
        None,
        status_code=status,
        headers=headers,
        title=title,
        detail=detail,
    )


async def _sign_in_first(request: Request, _: Exception) -> Response:
    response = RedirectResponse(page_url(request, "/sign-in"), status_code=303)
    if request.cookies:
        # Whatever session the cookie named has ended: drop it from the browser too.
        settings = components_of(request.app.state).get(Settings)
        STAFF_COOKIE.clear(response, secure=served_over_https(request, settings))
    return response


async def _callhome_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, CallhomeError)
    # Retry-After and the like matter to a browser too.
    return _error_page(request, error.status, error.detail, error.headers)


async def _invalid_input(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    # Where, never what: a submitted value is not echoed.
    fields = sorted({str(problem["loc"][-1]) for problem in error.errors() if problem["loc"]})
    return _error_page(request, 422, "These fields need another value: " + ", ".join(fields))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    detail = {
        404: "There is no such page here.",
        405: "This page does not take that kind of request.",
    }.get(error.status_code, "The request was refused.")
    return _error_page(request, error.status_code, detail)


def create_staff_app(state: State) -> FastAPI:
    """The staff pages, sharing `state` (the app's components) with the app that mounts them."""
    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    # One state: the outer app's lifespan puts the store there after this is built.
    web.state = state
    web.add_middleware(SecurityHeaders)
    web.add_exception_handler(SignInRequired, _sign_in_first)
    web.add_exception_handler(CallhomeError, _callhome_error)
    web.add_exception_handler(RequestValidationError, _invalid_input)
    web.add_exception_handler(StarletteHTTPException, _http_error)
    install_store_trouble_handler(web, _callhome_error)
    web.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    web.include_router(router)
    return web
