"""Tell every server's licence cache that a licence changed, once the change is committed."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.core import notifications
from app.licences import repository

NOTIFY_CHANNEL = "callhome_licences"
# Each process invalidates its own cache at commit; this tells its listener
# to skip the echo of its own notifications.
NODE_ID = uuid.uuid4().hex[:12]
_PENDING = "changed_licences"


async def mark_changed(session: AsyncSession, licence_id: uuid.UUID) -> None:
    notifications.defer_until_commit(session, _PENDING, licence_id)
    if session.get_bind().dialect.name == "postgresql":
        # Delivered by PostgreSQL at commit, to every node listening.
        await notifications.notify(session, NOTIFY_CHANNEL, f"{licence_id}:{NODE_ID}")
    else:
        # An embedded store has no NOTIFY: its other processes poll this counter.
        await repository.count_licence_change(session)


def on_commit(session_class: type[Session], invalidate: Callable[[uuid.UUID], None]) -> None:
    """Call `invalidate` in this process for each licence a committed session changed."""
    notifications.on_commit(session_class, _PENDING, invalidate)
