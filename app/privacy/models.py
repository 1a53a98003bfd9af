"""Erasure requests: the key holder asked, staff confirm; nothing is erased on the asking."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UtcDateTime


class ErasureRequest(Base):
    """A pending request to erase a licence's data: one per licence, gone once confirmed."""

    __tablename__ = "erasure_requests"

    licence_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("licences.id", ondelete="CASCADE"), primary_key=True
    )
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
