"""Publishing releases and signature sets: the one place the API and the CLI change them."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from packaging.version import Version
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import audit
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.events.models import EventType
from app.core.events.service import record_event
from app.core.pagination import DEFAULT_LIMIT
from app.releases import repository
from app.releases.catalog import FeedEntry, Loader, ReleaseEntry, mark_changed
from app.releases.models import FeedDelta, FeedVersion, Release
from app.releases.schemas import FeedVersionCreate, ReleaseChange, ReleaseCreate


async def publish_release(
    session: AsyncSession, data: ReleaseCreate, *, actor: str, now: dt.datetime
) -> Release:
    version = Version(data.version)
    # 8.1 and 8.1.0 are one version though spelt apart: compare as versions.
    existing = await repository.release_versions(session, data.product, data.channel)
    if any(Version(other) == version for other in existing):
        raise Conflict("This product has this version on this channel already")
    release = Release(
        id=uuid.uuid4(),
        product=data.product,
        channel=data.channel,
        version=data.version,
        published_at=data.published_at or now,
        url=data.url,
        sha256=data.sha256,
        size=data.size,
        notes_url=data.notes_url,
        critical=data.critical,
        min_from_version=data.min_from_version,
        rollout_percent=data.rollout_percent,
        yanked_at=None,
        created_at=now,
        updated_at=now,
    )
    await audit.insert_audited(
        session,
        release,
        conflict="This product has this version on this channel already",
        actor=actor,
        action="release.publish",
        target_type="release",
        target_id=str(release.id),
        at=now,
        detail={
            "product": release.product,
            "channel": release.channel,
            "version": release.version,
            "rollout_percent": release.rollout_percent,
        },
    )
    await mark_changed(session, ReleaseEntry.of(release))
    await record_event(session, EventType.RELEASE_PUBLISHED, release_facts(release), at=now)
    return release


@dataclass(frozen=True)
class ReleaseFilter:
    product: str | None = None
    channel: str | None = None


async def list_releases(
    session: AsyncSession,
    wanted: ReleaseFilter,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[Release], str | None]:
    return await repository.list_releases(
        session, product=wanted.product, channel=wanted.channel, cursor=cursor, limit=limit
    )


def release_facts(release: Release) -> dict[str, object]:
    """What a release event says: what release engineering published, nothing more."""
    return {
        "release_id": str(release.id),
        "product": release.product,
        "channel": release.channel,
        "version": release.version,
        "published_at": release.published_at.isoformat(),
        "critical": release.critical,
        "rollout_percent": release.rollout_percent,
        "yanked": release.yanked_at is not None,
    }


async def get_release(session: AsyncSession, release_id: uuid.UUID) -> Release:
    release = await repository.get_release(session, release_id)
    if release is None:
        raise NotFound("No such release")
    return release


async def change_release(
    session: AsyncSession,
    release_id: uuid.UUID,
    change: ReleaseChange,
    *,
    actor: str,
    now: dt.datetime,
) -> Release:
    release = await repository.get_release(session, release_id, lock=True)
    if release is None:
        raise NotFound("No such release")
    fields = change.model_dump(include=change.model_fields_set)
    if any(value is None for value in fields.values()):
        raise InvalidInput("A release's fields cannot be cleared")
    if release.yanked_at is not None:
        raise Conflict("A yanked release stays yanked and unchanged")
    if fields.pop("halt", False):
        fields["rollout_percent"] = 0
    before = {name: getattr(release, name) for name in fields if name != "yank"}
    rollout_before = release.rollout_percent
    if fields.pop("yank", False):
        release.yanked_at = now
    for name, value in fields.items():
        setattr(release, name, value)
    release.updated_at = now
    await mark_changed(session, ReleaseEntry.of(release))
    if release.yanked_at is not None or release.rollout_percent != rollout_before:
        await record_event(
            session,
            EventType.RELEASE_ROLLOUT_CHANGED,
            release_facts(release) | {"previous_rollout_percent": rollout_before},
            at=now,
        )
    await audit.record(
        session,
        actor=actor,
        action="release.yank" if release.yanked_at else "release.change",
        target_type="release",
        target_id=str(release.id),
        at=now,
        detail={"before": before, "after": {name: getattr(release, name) for name in before}},
    )
    return release


async def publish_feed_version(
    session: AsyncSession, feed: str, data: FeedVersionCreate, *, actor: str, now: dt.datetime
) -> FeedVersion:
    feed_version = FeedVersion(
        feed=feed,
        version=data.version,
        url=data.url,
        sha256=data.sha256,
        size=data.size,
        min_product_version=data.min_product_version,
        published_at=data.published_at or now,
        deltas=[
            FeedDelta(
                feed=feed,
                version=data.version,
                from_version=delta.from_version,
                url=delta.url,
                sha256=delta.sha256,
                size=delta.size,
            )
            for delta in data.deltas
        ],
    )
    if await repository.get_feed_version(session, feed, data.version) is not None:
        raise Conflict("This feed has this version already")
    await audit.insert_audited(
        session,
        feed_version,
        conflict="This feed has this version already",
        actor=actor,
        action="feed.publish",
        target_type="feed",
        target_id=f"{feed}:{feed_version.version}",
        at=now,
        detail={"deltas_from": [delta.from_version for delta in data.deltas]},
    )
    await mark_changed(session, FeedEntry.of(feed_version))
    return feed_version


async def feed_summaries(session: AsyncSession) -> list[tuple[str, int, int]]:
    """(feed, latest version, number of versions) for every feed, by name."""
    return await repository.feed_summaries(session)


async def list_feed_versions(
    session: AsyncSession, feed: str, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT
) -> tuple[list[FeedVersion], str | None]:
    """Newest version first, by keyset."""
    return await repository.list_feed_versions(session, feed, cursor=cursor, limit=limit)


@dataclass(frozen=True)
class ReleaseTrack:
    """A product's channel and its newest releases, newest version first."""

    product: str
    channel: str
    releases: list[Release]


async def release_tracks(session: AsyncSession, *, per_track: int = 5) -> list[ReleaseTrack]:
    """Every product and channel with its newest releases (yanked ones included, as such)."""
    tracks: dict[tuple[str, str], list[Release]] = {}
    for release in await repository.all_releases(session):
        tracks.setdefault((release.product, release.channel), []).append(release)
    return [
        ReleaseTrack(
            product,
            channel,
            sorted(releases, key=lambda release: Version(release.version), reverse=True)[
                :per_track
            ],
        )
        for (product, channel), releases in sorted(tracks.items())
    ]


async def catalog_entries(session: AsyncSession) -> tuple[list[ReleaseEntry], list[FeedEntry]]:
    """Everything the in-process catalog holds, read afresh."""
    releases = await repository.all_releases(session)
    feed_versions = await repository.all_feed_versions(session)
    return [ReleaseEntry.of(r) for r in releases], [FeedEntry.of(f) for f in feed_versions]


def catalog_loader(sessions: async_sessionmaker[AsyncSession]) -> Loader:
    """How the catalog rereads the store: from the primary, as a replica may lag a publish."""

    async def load() -> tuple[list[ReleaseEntry], list[FeedEntry]]:
        async with sessions() as session:
            return await catalog_entries(session)

    return load
