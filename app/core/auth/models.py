"""Staff tokens and the browser sessions signed in with them, both stored only hashed."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, JsonDocument, UtcDateTime


class Scope(enum.StrEnum):
    REPORTS_READ = "reports:read"
    REPORTS_WRITE = "reports:write"
    LICENCES_READ = "licences:read"
    LICENCES_WRITE = "licences:write"
    RELEASES_WRITE = "releases:write"
    PRIVACY_WRITE = "privacy:write"
    WEBHOOKS_WRITE = "webhooks:write"


class StaffToken(Base):
    __tablename__ = "staff_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JsonDocument)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class StaffSession(Base):
    """A signed-in browser, known to the server by a hash of its cookie."""

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
