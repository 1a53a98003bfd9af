"""The SQL of reading the audit log (entries are written through app/core/audit.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.audit import AuditEntry


async def newest_entries(
    session: AsyncSession,
    *,
    equal_to: dict[str, str | None],
    since: dt.datetime | None,
    until: dt.datetime | None,
    before_id: int | None,
    limit: int,
) -> list[AuditEntry]:
    """Up to `limit` entries, newest first by id; each filter given narrows them."""
    query = select(AuditEntry)
    for name, value in equal_to.items():
        if value is not None:
            query = query.where(getattr(AuditEntry, name) == value)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(await session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))
