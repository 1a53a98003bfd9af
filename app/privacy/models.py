"""Privacy's own tables: erasure requests (the key holder asked, staff confirm; nothing is
erased on the asking), and the relations an erasure left deleted rows in, until rewritten."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UtcDateTime


class ErasureRequest(Base):
    """A pending request to erase a licence's data: one per licence, gone once confirmed."""

    __tablename__ = "erasure_requests"

    licence_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("licences.id", ondelete="CASCADE"), primary_key=True
    )
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class PendingRewrite(Base):
    """A table or ping partition to write anew (PostgreSQL), so erased rows leave its files."""

    __tablename__ = "pending_rewrites"

    relation: Mapped[str] = mapped_column(String(63), primary_key=True)
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
