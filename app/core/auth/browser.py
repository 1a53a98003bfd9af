"""The browser sessions of the staff pages and the key holder's pages, one mechanism for both:
HTTPS (or this very machine), a strict session cookie, the same origin, the session's CSRF
token on every form, and the redirects that set and drop the cookie.

No postponed annotations here: the dependencies' signatures name closure variables, which
FastAPI must see evaluated."""

import datetime as dt
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Form
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response

from app.core.deps import DatabaseDep, Now, SettingsDep
from app.core.errors import Forbidden
from app.core.network import forwarded_proto, is_trusted_proxy
from app.core.settings import Settings

# Form fields and cookies are bounded: nothing longer is worth reading.
CSRF_FIELD_LENGTH = 128
COOKIE_LENGTH = 64

# Who a session's cookie signs in: a staff member, a key holder.
SignedIn = TypeVar("SignedIn")
# The live session a cookie's value names, its use noted; None when there is none (any more).
ResumeSession = Callable[[AsyncSession, str, Settings, dt.datetime], Awaitable[SignedIn | None]]
SessionDependency = Callable[..., Awaitable[SignedIn]]


class SignInRequired(Exception):
    """No live page session: the browser is sent to the sign-in page."""


@dataclass(frozen=True)
class SessionCookie:
    """A session cookie sent only to the pages under `path`, never to scripts or other sites."""

    name: str
    path: str

    def value(self, connection: HTTPConnection) -> str | None:
        return connection.cookies.get(self.name)

    def set(self, response: Response, value: str, *, secure: bool, max_age_s: int) -> None:
        response.set_cookie(
            self.name,
            value,
            max_age=max_age_s,
            path=self.path,
            secure=secure,
            httponly=True,
            samesite="strict",
        )

    def clear(self, response: Response, *, secure: bool) -> None:
        response.delete_cookie(
            self.name, path=self.path, secure=secure, httponly=True, samesite="strict"
        )


def served_over_https(connection: HTTPConnection, settings: Settings) -> bool:
    """HTTPS to us, or to a trusted proxy that says so (X-Forwarded-Proto)."""
    if connection.url.scheme == "https":
        return True
    peer = connection.client.host if connection.client else ""
    scheme = forwarded_proto(connection.headers.getlist("x-forwarded-proto"))
    return scheme == "https" and is_trusted_proxy(peer, settings.trusted_proxies)


def from_loopback(connection: HTTPConnection) -> bool:
    try:
        host = connection.client.host if connection.client else ""
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_must_be_secure(connection: HTTPConnection, settings: Settings) -> bool:
    """Whether the cookie is `Secure`: always, but over plain http from this very machine.

    Plain http from anywhere else is refused, so a token or a session never crosses a
    network in the clear.
    """
    if served_over_https(connection, settings):
        return True
    if from_loopback(connection):
        return False
    raise Forbidden("This page is served over HTTPS only (or over http on localhost)")


def check_same_origin(connection: HTTPConnection, settings: Settings) -> None:
    """Refuse a form post that another site's page sent (Origin, else Referer)."""
    scheme = "https" if served_over_https(connection, settings) else "http"
    own_origin = f"{scheme}://{connection.headers.get('host', '')}"
    origin = connection.headers.get("origin")
    if origin is not None:
        if origin != own_origin:
            raise Forbidden("This form was sent from another site")
        return
    referer = connection.headers.get("referer", "")
    if not referer.startswith(own_origin + "/"):
        raise Forbidden("This form was sent from another site")


def check_csrf_token(expected: str, sent: str | None) -> None:
    if sent is None or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("This form has expired or did not come from this page: reload and retry")


def session_dependency(
    cookie: SessionCookie, resume: ResumeSession[SignedIn]
) -> SessionDependency[SignedIn]:
    """A dependency giving who `cookie` signs in; without a live session (no cookie, an
    overlong one, one the store does not know or that has ended) the browser goes to sign in."""

    async def signed_in(
        request: Request, database: DatabaseDep, settings: SettingsDep, now: Now
    ) -> SignedIn:
        cookie_value = cookie.value(request)
        if not cookie_value or len(cookie_value) > COOKIE_LENGTH:
            raise SignInRequired()
        # The primary, never a replica: a sign-out or revocation takes effect at once.
        async with database.sessions() as session, session.begin():
            found = await resume(session, cookie_value, settings, now)
        if found is None:
            raise SignInRequired()
        return found

    return signed_in


def form_dependency(
    signed_in: SessionDependency[SignedIn], csrf_token_of: Callable[[SignedIn], str]
) -> SessionDependency[SignedIn]:
    """A dependency for the forms of the pages `signed_in` guards: a form this very page sent,
    from the same origin, carrying the session's CSRF token (`csrf_token_of` who is signed in)."""

    async def signed_in_form(
        request: Request,
        who: Annotated[SignedIn, Depends(signed_in)],
        settings: SettingsDep,
        csrf_token: Annotated[str | None, Form(max_length=CSRF_FIELD_LENGTH)] = None,
    ) -> SignedIn:
        check_same_origin(request, settings)
        check_csrf_token(csrf_token_of(who), csrf_token)
        return who

    return signed_in_form


def see_other(url: str) -> RedirectResponse:
    """On to `url` by GET: the answer to a form post, so reloading never posts it again."""
    return RedirectResponse(url, status_code=303)


def see_other_signed_in(
    url: str, cookie: SessionCookie, cookie_value: str, *, secure: bool, max_age_s: int
) -> Response:
    """A sign-in's answer: the new session's cookie, and on to `url`."""
    response = see_other(url)
    cookie.set(response, cookie_value, secure=secure, max_age_s=max_age_s)
    return response


def see_other_signed_out(
    url: str, cookie: SessionCookie, request: Request, settings: Settings
) -> Response:
    """On to `url` with the session's cookie dropped from the browser: at sign-out, or when
    the session it named has ended."""
    response = see_other(url)
    cookie.clear(response, secure=served_over_https(request, settings))
    return response
