"""Releases per product and channel, and the versions (with deltas) of signature feeds."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, UtcDateTime

URL_LENGTH = 2048


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("product", "channel", "version"),
        CheckConstraint("rollout_percent BETWEEN 0 AND 100", name="rollout_percent"),
        CheckConstraint("size >= 0", name="size"),
        Index(None, "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    product: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    # Normalised (packaging's str(Version)), so equal versions are spelt alike.
    version: Mapped[str] = mapped_column(String(32))
    published_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    notes_url: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    critical: Mapped[bool] = mapped_column(Boolean)
    min_from_version: Mapped[str | None] = mapped_column(String(32))
    rollout_percent: Mapped[int] = mapped_column(Integer)
    yanked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class FeedVersion(Base):
    """One full signature set of a feed."""

    __tablename__ = "feed_versions"
    __table_args__ = (CheckConstraint("size >= 0", name="size"),)

    feed: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    min_product_version: Mapped[str | None] = mapped_column(String(32))
    published_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    deltas: Mapped[list[FeedDelta]] = relationship(
        lazy="selectin", order_by="FeedDelta.from_version", cascade="all, delete-orphan"
    )


class FeedDelta(Base):
    """A patch that turns an installed version of the feed into this one."""

    __tablename__ = "feed_deltas"
    __table_args__ = (
        ForeignKeyConstraint(
            ["feed", "version"],
            ["feed_versions.feed", "feed_versions.version"],
            ondelete="CASCADE",
        ),
        CheckConstraint("from_version < version", name="from_version"),
        CheckConstraint("size >= 0", name="size"),
    )

    feed: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    from_version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
