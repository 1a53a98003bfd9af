"""Reading the audit log: newest first, filtered, by keyset."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.core.audit import AuditEntry
from app.core.pagination import DEFAULT_LIMIT, CursorInt64, decode_cursor, encode_cursor


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


async def list_entries(
    session: AsyncSession,
    wanted: AuditFilter,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[AuditEntry], str | None]:
    """Newest first by id, which only grows: new entries never shift a later page."""
    before_id = None
    if cursor:
        (before_id,) = decode_cursor(cursor, tuple[CursorInt64])
    rows = await repository.newest_entries(
        session,
        equal_to={
            "actor": wanted.actor,
            "action": wanted.action,
            "target_type": wanted.target_type,
            "target_id": wanted.target_id,
        },
        since=wanted.since,
        until=wanted.until,
        before_id=before_id,
        limit=limit + 1,
    )
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(rows[limit - 1].id)
