"""The staff web page as an app of its own, mounted under /staff: HTML errors, strict headers.
`create_page_app` builds any such page app (the customer page under /my/ too)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from app.core.auth.browser import SessionCookie, SignInRequired, see_other, see_other_signed_out
from app.core.auth.dependencies import STAFF_COOKIE
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
    413: "Too large",
    422: "Invalid input",
    429: "Too many requests",
    503: "Try again shortly",
}

# Renders the error page: (request, status, heading, detail).
ErrorPage = Callable[[Request, int, str, str], Response]


def create_page_app(
    state: State, pages: APIRouter, *, cookie: SessionCookie, error_page: ErrorPage
) -> FastAPI:
    """Browser pages sharing `state` (the app's components) with the app that mounts them:
    strict security headers, HTML error pages, and a sign-in page for an ended session."""

    def error(request: Request, status: int, detail: str) -> Response:
        return error_page(request, status, _HEADINGS.get(status, "Something went wrong"), detail)

    async def sign_in_first(request: Request, _: Exception) -> Response:
        sign_in = page_url(request, "/sign-in")
        if not request.cookies:
            return see_other(sign_in)
        # Whatever session the cookie named has ended: drop it from the browser too.
        settings = components_of(request.app.state).get(Settings)
        return see_other_signed_out(sign_in, cookie, request, settings)

    async def callhome_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CallhomeError)
        response = error(request, exc.status, exc.detail)
        response.headers.update(exc.headers)
        return response

    async def invalid_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        # Where, never what: a submitted value is not echoed.
        fields = sorted({str(problem["loc"][-1]) for problem in exc.errors() if problem["loc"]})
        return error(request, 422, "These fields need another value: " + ", ".join(fields))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = {
            404: "There is no such page here.",
            405: "This page does not take that kind of request.",
        }.get(exc.status_code, "The request was refused.")
        return error(request, exc.status_code, detail)

    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    # One state: the outer app's lifespan puts the store there after this is built.
    web.state = state
    web.add_middleware(SecurityHeaders)
    web.add_exception_handler(SignInRequired, sign_in_first)
    web.add_exception_handler(CallhomeError, callhome_error)
    web.add_exception_handler(RequestValidationError, invalid_input)
    web.add_exception_handler(StarletteHTTPException, http_error)
    install_store_trouble_handler(web, callhome_error)
    web.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    web.include_router(pages)
    return web


def _staff_error_page(request: Request, status: int, title: str, detail: str) -> Response:
    return render(request, "error.html", None, status_code=status, title=title, detail=detail)


def create_staff_app(state: State) -> FastAPI:
    """The staff pages, mounted under /staff."""
    return create_page_app(state, router, cookie=STAFF_COOKIE, error_page=_staff_error_page)
