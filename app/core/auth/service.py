"""Staff tokens (random, stored hashed, scoped) and the browser sessions signed in with them."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.auth import repository
from app.core.auth.models import Scope, StaffSession, StaffToken
from app.core.errors import NotFound
from app.core.settings import Settings

TOKEN_PREFIX = "chs_"


def hash_token(token: str) -> str:
    # Tokens and cookies carry 256 random bits: a plain digest is as strong as a slow hash here.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class PageSession:
    """What a staff page needs of its browser session: the CSRF token its forms carry."""

    csrf_token: str
    id_hash: str
    token_id: str


@dataclass(frozen=True)
class Staff:
    """Who is acting: the token's name is what the audit log records. `page_session` is
    set when they act through the staff page rather than the API."""

    name: str
    scopes: frozenset[str]
    page_session: PageSession | None = None

    def may(self, scope: Scope) -> bool:
        return scope.value in self.scopes


@dataclass(frozen=True)
class IssuedToken:
    token: StaffToken
    secret: str


async def create_token(
    session: AsyncSession,
    *,
    name: str,
    scopes: list[Scope],
    now: dt.datetime,
    expires_at: dt.datetime | None = None,
) -> IssuedToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = StaffToken(
        name=name,
        token_hash=hash_token(secret),
        scopes=sorted({scope.value for scope in scopes}),
        created_at=now,
        expires_at=expires_at,
        revoked_at=None,
    )
    session.add(token)
    await session.flush()
    return IssuedToken(token, secret)


async def list_tokens(session: AsyncSession) -> list[StaffToken]:
    return await repository.tokens(session)


async def revoke_token(session: AsyncSession, token_id: uuid.UUID, now: dt.datetime) -> StaffToken:
    token = await repository.token_for_update(session, token_id)
    if token is None:
        raise NotFound("No such token")
    if token.revoked_at is None:
        token.revoked_at = now
    return token


def is_usable(token: StaffToken, now: dt.datetime) -> bool:
    """Neither revoked nor expired: checked at every use, so a revocation ends its sessions too."""
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


async def usable_token(session: AsyncSession, secret: str, now: dt.datetime) -> StaffToken | None:
    """The token whose secret this is, if it may be used now; None tells no reason why not."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(secret)
    token = await repository.token_by_hash(session, digest)
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    return token if is_usable(token, now) else None


async def authenticate(session: AsyncSession, secret: str, now: dt.datetime) -> Staff | None:
    token = await usable_token(session, secret, now)
    return None if token is None else Staff(token.name, frozenset(token.scopes))


# -- browser sessions ------------------------------------------------------------


async def start_session(
    session: AsyncSession, token: StaffToken, settings: Settings, now: dt.datetime
) -> str:
    """A new session for `token`; returns the cookie value, which is stored only hashed."""
    idle_since = now - dt.timedelta(seconds=settings.staff_session_idle_s)
    await repository.forget_sessions_ended(session, now=now, idle_since=idle_since)
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
) -> Staff | None:
    """The staff member of the live session this cookie names, its use noted; an ended
    session is deleted."""
    found = await repository.session_with_token_for_update(session, hash_token(cookie_value))
    if found is None:
        return None
    staff_session, token = found
    idle_until = staff_session.last_used_at + dt.timedelta(seconds=settings.staff_session_idle_s)
    if not is_usable(token, now) or now >= staff_session.expires_at or now >= idle_until:
        await repository.drop_session(session, staff_session)
        return None
    staff_session.last_used_at = now
    page_session = PageSession(
        csrf_token=staff_session.csrf_secret,
        id_hash=staff_session.id_hash,
        token_id=str(token.id),
    )
    return Staff(token.name, frozenset(token.scopes), page_session)


async def end_session(session: AsyncSession, staff: Staff, now: dt.datetime) -> None:
    if staff.page_session is None:
        return
    await repository.delete_session(session, staff.page_session.id_hash)
    await audit.record(
        session,
        actor=staff.name,
        action="staff.sign_out",
        target_type="staff_token",
        target_id=staff.page_session.token_id,
        at=now,
    )
