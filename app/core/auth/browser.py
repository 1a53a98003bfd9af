"""What a signed-in browser must prove: HTTPS (or this very machine), a strict session
cookie, the same origin, and the session's CSRF token on every form."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.responses import Response

from app.core.errors import Forbidden
from app.core.network import forwarded_proto, is_trusted_proxy
from app.core.settings import Settings


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
    raise Forbidden("The staff page is served over HTTPS only (or over http on localhost)")


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
