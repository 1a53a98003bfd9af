"""The audit log: every staff action, who did it (by token name), what, when, on what."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, JsonDocument, UtcDateTime
from app.core.errors import Conflict

AutoId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDocument)


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    at: dt.datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            at=at,
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            detail=detail or {},
        )
    )


async def insert_audited(
    session: AsyncSession,
    *rows: Base,
    conflict: str,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    at: dt.datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Insert new rows and audit their creation; a unique key already taken is a Conflict.

    The savepoint keeps the caller's transaction usable after the refusal.
    """
    try:
        async with session.begin_nested():
            session.add_all(rows)
    except IntegrityError as error:
        raise Conflict(conflict) from error
    await record(
        session,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        at=at,
        detail=detail,
    )
