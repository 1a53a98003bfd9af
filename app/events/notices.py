"""Expiry notices (licence.expiring N days ahead, licence.expired) and the outbox's
retention: a periodic job that one node at a time runs (an advisory lock on PostgreSQL),
and that may run twice without repeating a notice (each carries a dedupe key)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.events.models import EventType
from app.core.settings import Settings
from app.events import repository
from app.licences import repository as licences
from app.licences.events import record_licence_event

# Names "the expiry notices" among PostgreSQL advisory locks.
NOTICES_LOCK_ID = 0x6E6F7469


@dataclass(frozen=True)
class NoticesReport:
    expiring: int = 0
    expired: int = 0
    events_expired: int = 0


def notice_days(remaining: dt.timedelta, days: tuple[int, ...]) -> int | None:
    """The smallest notice (in days) that `remaining` falls within: a licence with five
    days left gets the 7-day notice, not also the 30-day one it was never sent."""
    fitting = [n for n in days if remaining <= dt.timedelta(days=n)]
    return min(fitting) if fitting else None


async def run(session: AsyncSession, settings: Settings, now: dt.datetime) -> NoticesReport:
    if not await repository.try_lock(session, NOTICES_LOCK_ID):
        return NoticesReport()
    expiring = expired = 0
    lookback = dt.timedelta(days=settings.webhook_retention_days)
    ahead = dt.timedelta(days=max(settings.expiring_notice_days, default=0))
    for licence in await licences.ending_between(session, now - lookback, now + ahead):
        assert licence.expires_at is not None
        ends = licence.expires_at.isoformat()
        if licence.expires_at <= now:
            expired += await record_licence_event(
                session, EventType.LICENCE_EXPIRED, licence, at=now, once=f"{licence.id}:{ends}"
            )
            continue
        days = notice_days(licence.expires_at - now, settings.expiring_notice_days)
        if days is not None:
            expiring += await record_licence_event(
                session,
                EventType.LICENCE_EXPIRING,
                licence,
                at=now,
                once=f"{licence.id}:{days}:{ends}",
                days=days,
            )
    events_expired = await repository.expire_events(session, now - lookback)
    return NoticesReport(expiring, expired, events_expired)
