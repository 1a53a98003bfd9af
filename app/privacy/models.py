"""Privacy's own table: the relations an erasure left deleted rows in, until rewritten."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UtcDateTime


class PendingRewrite(Base):
    """A table or ping partition to write anew (PostgreSQL), so erased rows leave its files."""

    __tablename__ = "pending_rewrites"

    relation: Mapped[str] = mapped_column(String(63), primary_key=True)
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
