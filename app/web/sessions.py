"""Signing in with a staff token: server-side sessions, their cookie, and the CSRF checks."""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.core import audit
from app.core.auth import Staff, StaffToken, hash_token, is_usable, staff_of
from app.core.errors import Forbidden
from app.core.network import is_trusted_proxy
from app.core.settings import Settings
from app.web.models import StaffSession

COOKIE_NAME = "callhome_staff"
# Where the app factory mounts the staff page; its cookie is sent nowhere else.
MOUNT_PATH = "/staff"


@dataclass(frozen=True)
class SignedIn:
    """The staff member behind a live session, and the token its forms must carry."""

    staff: Staff
    csrf_token: str
    id_hash: str
    token_id: str


class SignInRequired(Exception):
    """No live session: the browser is sent to the sign-in page."""


async def _forget_stale(session: AsyncSession, settings: Settings, now: dt.datetime) -> None:
    idle_since = now - dt.timedelta(seconds=settings.staff_session_idle_s)
    await session.execute(
        delete(StaffSession).where(
            or_(StaffSession.expires_at <= now, StaffSession.last_used_at <= idle_since)
        )
    )


async def start_session(
    session: AsyncSession, token: StaffToken, settings: Settings, now: dt.datetime
) -> str:
    """A new session for `token`; returns the cookie value, which is stored only hashed."""
    await _forget_stale(session, settings, now)
    cookie_value = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            id_hash=hash_token(cookie_value),
            token_id=token.id,
            csrf_secret=secrets.token_urlsafe(32),
            created_at=now,
            last_used_at=now,
            expires_at=now + dt.timedelta(seconds=settings.staff_session_lifetime_s),
        )
    )
    await audit.record(
        session,
        actor=token.name,
        action="staff.sign_in",
        target_type="staff_token",
        target_id=str(token.id),
        at=now,
    )
    await session.flush()
    return cookie_value


async def resume_session(
    session: AsyncSession, cookie_value: str, settings: Settings, now: dt.datetime
) -> SignedIn | None:
    """The live session this cookie names, its use noted; an ended one is deleted."""
    row = (
        await session.execute(
            select(StaffSession, StaffToken)
            .join(StaffToken, StaffToken.id == StaffSession.token_id)
            .where(StaffSession.id_hash == hash_token(cookie_value))
            .with_for_update(of=StaffSession)
        )
    ).first()
    if row is None:
        return None
    staff_session, token = row
    idle_until = staff_session.last_used_at + dt.timedelta(seconds=settings.staff_session_idle_s)
    if not is_usable(token, now) or now >= staff_session.expires_at or now >= idle_until:
        await session.delete(staff_session)
        return None
    staff_session.last_used_at = now
    return SignedIn(
        staff=staff_of(token),
        csrf_token=staff_session.csrf_secret,
        id_hash=staff_session.id_hash,
        token_id=str(token.id),
    )


async def end_session(session: AsyncSession, signed_in: SignedIn, now: dt.datetime) -> None:
    await session.execute(delete(StaffSession).where(StaffSession.id_hash == signed_in.id_hash))
    await audit.record(
        session,
        actor=signed_in.staff.name,
        action="staff.sign_out",
        target_type="staff_token",
        target_id=signed_in.token_id,
        at=now,
    )


def served_over_https(request: Request, settings: Settings) -> bool:
    """HTTPS to us, or to a trusted proxy that says so (X-Forwarded-Proto)."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    forwarded_proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    return forwarded_proto == "https" and is_trusted_proxy(peer, settings.trusted_proxies)


def from_loopback(request: Request) -> bool:
    try:
        return ipaddress.ip_address(request.client.host if request.client else "").is_loopback
    except ValueError:
        return False


def cookie_must_be_secure(request: Request, settings: Settings) -> bool:
    """Whether the cookie is `Secure`: always, but over plain http from this very machine.

    Plain http from anywhere else is refused, so a token or a session never crosses a
    network in the clear.
    """
    if served_over_https(request, settings):
        return True
    if from_loopback(request):
        return False
    raise Forbidden("The staff page is served over HTTPS only (or over http on localhost)")


def set_session_cookie(
    response: Response, cookie_value: str, *, secure: bool, max_age_s: int
) -> None:
    response.set_cookie(
        COOKIE_NAME,
        cookie_value,
        max_age=max_age_s,
        path=MOUNT_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(
        COOKIE_NAME, path=MOUNT_PATH, secure=secure, httponly=True, samesite="strict"
    )


def check_same_origin(request: Request, settings: Settings) -> None:
    """Refuse a form post that another site's page sent (Origin, else Referer)."""
    scheme = "https" if served_over_https(request, settings) else "http"
    own_origin = f"{scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is not None:
        if origin != own_origin:
            raise Forbidden("This form was sent from another site")
        return
    referer = request.headers.get("referer", "")
    if not referer.startswith(own_origin + "/"):
        raise Forbidden("This form was sent from another site")


def check_csrf_token(signed_in: SignedIn, sent: str | None) -> None:
    if sent is None or not hmac.compare_digest(sent.encode(), signed_in.csrf_token.encode()):
        raise Forbidden("This form has expired or did not come from this page: reload and retry")
