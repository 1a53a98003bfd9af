"""Tell every server's licence cache that a licence changed, once the change is committed."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

NOTIFY_CHANNEL = "callhome_licences"
# Each process invalidates its own cache at commit; this tells its listener
# to skip the echo of its own notifications.
NODE_ID = uuid.uuid4().hex[:12]
_PENDING = "changed_licences"


async def mark_changed(session: AsyncSession, licence_id: uuid.UUID) -> None:
    session.info.setdefault(_PENDING, set()).add(licence_id)
    if session.get_bind().dialect.name == "postgresql":
        # Delivered by PostgreSQL at commit, to every node listening.
        await session.execute(
            text("SELECT pg_notify(:channel, :licence_id)"),
            {"channel": NOTIFY_CHANNEL, "licence_id": f"{licence_id}:{NODE_ID}"},
        )


def on_commit(session_class: type[Session], invalidate: Callable[[uuid.UUID], None]) -> None:
    """Call `invalidate` in this process for each licence a committed session changed."""

    @event.listens_for(session_class, "after_commit")
    def _after_commit(session: Session) -> None:
        for licence_id in session.info.pop(_PENDING, ()):
            invalidate(licence_id)

    @event.listens_for(session_class, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(_PENDING, None)
