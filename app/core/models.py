"""Core's own table: the day keys behind each day's network pseudonyms."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UtcDateTime


class DayKey(Base):
    """A random key per UTC day for net_id, sealed under a key kept outside the store;
    destroyed 48 hours after the day begins."""

    __tablename__ = "day_keys"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    # Nonce, the key encrypted under AES-256-GCM, and its tag (app/core/pseudonyms.py).
    sealed_key: Mapped[bytes] = mapped_column(LargeBinary(60))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
