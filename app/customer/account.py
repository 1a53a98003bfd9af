"""The key holder's sessions on the /my/ page: signed in with the licence key, stored hashed."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.auth.service import hash_token
from app.core.settings import Settings
from app.licences import repository
from app.licences.models import CustomerSession
from app.licences.service import CUSTOMER_ACTOR


@dataclass(frozen=True)
class Account:
    """Who is signed in: a licence, and the CSRF token its session's forms carry."""

    licence_id: uuid.UUID
    csrf_token: str
    id_hash: str


async def start_session(
    session: AsyncSession, licence_id: uuid.UUID, settings: Settings, now: dt.datetime
) -> str:
    """A new session for the licence; returns the cookie value, which is stored only hashed."""
    idle_since = now - dt.timedelta(seconds=settings.customer_session_idle_s)
    await repository.forget_customer_sessions_ended(session, now=now, idle_since=idle_since)
    cookie_value = secrets.token_urlsafe(32)
    session.add(
        CustomerSession(
            id_hash=hash_token(cookie_value),
            licence_id=licence_id,
            csrf_secret=secrets.token_urlsafe(32),
            created_at=now,
            last_used_at=now,
            expires_at=now + dt.timedelta(seconds=settings.customer_session_lifetime_s),
        )
    )
    await audit.record(
        session,
        actor=CUSTOMER_ACTOR,
        action="customer.sign_in",
        target_type="licence",
        target_id=str(licence_id),
        at=now,
    )
    await session.flush()
    return cookie_value


async def resume_session(
    session: AsyncSession, cookie_value: str, settings: Settings, now: dt.datetime
) -> Account | None:
    """The account of the live session this cookie names, its use noted; an ended session
    is deleted."""
    found = await repository.customer_session_for_update(session, hash_token(cookie_value))
    if found is None:
        return None
    idle_until = found.last_used_at + dt.timedelta(seconds=settings.customer_session_idle_s)
    if now >= found.expires_at or now >= idle_until:
        await session.delete(found)
        return None
    found.last_used_at = now
    return Account(found.licence_id, found.csrf_secret, found.id_hash)


async def end_session(session: AsyncSession, account: Account, now: dt.datetime) -> None:
    await repository.delete_customer_session(session, account.id_hash)
    await audit.record(
        session,
        actor=CUSTOMER_ACTOR,
        action="customer.sign_out",
        target_type="licence",
        target_id=str(account.licence_id),
        at=now,
    )
