"""The SQL of releases and signature feeds."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import CursorInt64, decode_cursor, encode_cursor, newest_first
from app.releases.models import FeedVersion, Release


async def all_releases(session: AsyncSession) -> list[Release]:
    return list(await session.scalars(select(Release)))


async def all_feed_versions(session: AsyncSession) -> list[FeedVersion]:
    return list(await session.scalars(select(FeedVersion)))


async def release_versions(session: AsyncSession, product: str, channel: str) -> list[str]:
    return list(
        await session.scalars(
            select(Release.version).where(Release.product == product, Release.channel == channel)
        )
    )


async def get_release(
    session: AsyncSession, release_id: uuid.UUID, *, lock: bool = False
) -> Release | None:
    return await session.get(Release, release_id, with_for_update=lock)


async def get_feed_version(session: AsyncSession, feed: str, version: int) -> FeedVersion | None:
    return await session.get(FeedVersion, (feed, version))


async def list_releases(
    session: AsyncSession,
    *,
    product: str | None,
    channel: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Release], str | None]:
    """Newest first, by keyset; each filter given narrows the list."""
    query = select(Release)
    if product:
        query = query.where(Release.product == product)
    if channel:
        query = query.where(Release.channel == channel)
    return await newest_first(
        session, query, Release.created_at, Release.id, cursor=cursor, limit=limit
    )


async def feed_summaries(session: AsyncSession) -> list[tuple[str, int, int]]:
    """(feed, latest version, number of versions) for every feed, by name."""
    rows = await session.execute(
        select(FeedVersion.feed, func.max(FeedVersion.version), func.count())
        .group_by(FeedVersion.feed)
        .order_by(FeedVersion.feed)
    )
    return [(feed, int(latest), int(count)) for feed, latest, count in rows]


async def list_feed_versions(
    session: AsyncSession, feed: str, *, cursor: str | None, limit: int
) -> tuple[list[FeedVersion], str | None]:
    """Newest version first, by keyset."""
    query = select(FeedVersion).where(FeedVersion.feed == feed)
    if cursor:
        (before,) = decode_cursor(cursor, tuple[CursorInt64])
        query = query.where(FeedVersion.version < before)
    query = query.order_by(FeedVersion.version.desc()).limit(limit + 1)
    rows = list(await session.scalars(query))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(rows[limit - 1].version)
