"""Staff bearer tokens: random, stored hashed, scoped, checked on every admin route."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import String, Uuid, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, JsonDocument, UtcDateTime, database_of
from app.core.errors import Forbidden, NotFound, Unauthenticated

TOKEN_PREFIX = "chs_"


class Scope(enum.StrEnum):
    REPORTS_READ = "reports:read"
    REPORTS_WRITE = "reports:write"
    LICENCES_READ = "licences:read"
    LICENCES_WRITE = "licences:write"
    RELEASES_WRITE = "releases:write"
    PRIVACY_WRITE = "privacy:write"


class StaffToken(Base):
    __tablename__ = "staff_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JsonDocument)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits: a plain digest is as strong as a slow hash here.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Staff:
    """Who is acting: the token's name is what the audit log records."""

    name: str
    scopes: frozenset[str]


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
    return list(await session.scalars(select(StaffToken).order_by(StaffToken.created_at)))


async def revoke_token(session: AsyncSession, token_id: uuid.UUID, now: dt.datetime) -> StaffToken:
    token = await session.get(StaffToken, token_id, with_for_update=True)
    if token is None:
        raise NotFound("No such token")
    if token.revoked_at is None:
        token.revoked_at = now
    return token


def is_usable(token: StaffToken, now: dt.datetime) -> bool:
    """Neither revoked nor expired: checked at every use, so a revocation ends its sessions too."""
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


def staff_of(token: StaffToken) -> Staff:
    return Staff(name=token.name, scopes=frozenset(token.scopes))


async def usable_token(session: AsyncSession, secret: str, now: dt.datetime) -> StaffToken | None:
    """The token whose secret this is, if it may be used now; None tells no reason why not."""
    digest = hash_token(secret)
    token = await session.scalar(select(StaffToken).where(StaffToken.token_hash == digest))
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    return token if is_usable(token, now) else None


async def authenticate(session: AsyncSession, secret: str, now: dt.datetime) -> Staff | None:
    token = await usable_token(session, secret, now)
    return None if token is None else staff_of(token)


_bearer = HTTPBearer(auto_error=False)


async def current_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Staff:
    if credentials is None or not credentials.credentials.startswith(TOKEN_PREFIX):
        raise Unauthenticated()
    now = request.app.state.clock.now()
    # The primary, never a replica: a revocation must take effect at once.
    async with database_of(request).sessions() as session:
        staff = await authenticate(session, credentials.credentials, now)
    if staff is None:
        raise Unauthenticated()
    return staff


def require(scope: Scope) -> object:
    """A dependency that admits staff holding `scope`."""

    async def check(staff: Annotated[Staff, Depends(current_staff)]) -> Staff:
        if scope.value not in staff.scopes:
            raise Forbidden(f"This needs the {scope.value} scope")
        return staff

    return Depends(check)


LicencesReader = Annotated[Staff, require(Scope.LICENCES_READ)]
LicencesWriter = Annotated[Staff, require(Scope.LICENCES_WRITE)]
ReportsReader = Annotated[Staff, require(Scope.REPORTS_READ)]
ReportsWriter = Annotated[Staff, require(Scope.REPORTS_WRITE)]
ReleasesWriter = Annotated[Staff, require(Scope.RELEASES_WRITE)]
PrivacyWriter = Annotated[Staff, require(Scope.PRIVACY_WRITE)]
