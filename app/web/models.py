"""Staff web sessions: a signed-in browser, known to the server by a hash of its cookie."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UtcDateTime


class StaffSession(Base):
    __tablename__ = "staff_sessions"

    # SHA-256 of the cookie's value: a copy of the table opens no session.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Deleting a token deletes its sessions; a revoked or expired one is refused at every use.
    token_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("staff_tokens.id", ondelete="CASCADE"), index=True
    )
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
