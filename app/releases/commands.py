"""`callhome releases` and `callhome feeds`: the publishing API on the command line."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.commands import CLI_ACTOR, JsonFlag, emit, emit_page, in_session, now, parse
from app.core.pagination import DEFAULT_LIMIT
from app.core.schemas import PRODUCT_PATTERN
from app.core.settings import Settings
from app.releases import service
from app.releases.models import FeedVersion, Release
from app.releases.schemas import (
    FeedVersionCreate,
    FeedVersionOut,
    ReleaseChange,
    ReleaseCreate,
    ReleaseOut,
)

releases_app = typer.Typer(help="Releases: publish, roll out, yank.")
feeds_app = typer.Typer(help="Signature feeds: publish versions and deltas.")


def release_document(release: Release) -> dict[str, Any]:
    return ReleaseOut.model_validate(release).model_dump(mode="json")


def release_summary(release: Release) -> str:
    state = "yanked" if release.yanked_at else f"{release.rollout_percent}%"
    critical = "  critical" if release.critical else ""
    return (
        f"{release.id}  {release.product:<16} {release.channel:<8} {release.version:<12} "
        f"{state}{critical}"
    )


def feed_version_document(feed_version: FeedVersion) -> dict[str, Any]:
    return FeedVersionOut.model_validate(feed_version).model_dump(mode="json", by_alias=True)


def feed_version_summary(feed_version: FeedVersion) -> str:
    origins = ",".join(str(delta.from_version) for delta in feed_version.deltas) or "none"
    return f"{feed_version.feed:<16} {feed_version.version:<12} deltas from {origins}"


@releases_app.command("publish")
def releases_publish(
    product: Annotated[str, typer.Option(help="Product name, [a-z0-9-]{1,32}.")],
    version: Annotated[str, typer.Option(help="The release's version (PEP 440).")],
    url: Annotated[str, typer.Option(help="Where installs download it.")],
    sha256: Annotated[str, typer.Option(help="SHA-256 hex of the download.")],
    size: Annotated[int, typer.Option(help="Size of the download in bytes.")],
    channel: Annotated[str, typer.Option(help="Release channel.")] = "stable",
    critical: Annotated[bool, typer.Option(help="Installs should take it at once.")] = False,
    min_from_version: Annotated[
        str | None, typer.Option(help="Older installs first take a stepping stone.")
    ] = None,
    rollout_percent: Annotated[int, typer.Option(help="Share of machines offered it.")] = 100,
    notes_url: Annotated[str | None, typer.Option(help="Release notes.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish a release."""
    data = parse(
        ReleaseCreate,
        product=product,
        version=version,
        url=url,
        sha256=sha256,
        size=size,
        channel=channel,
        critical=critical,
        min_from_version=min_from_version,
        rollout_percent=rollout_percent,
        notes_url=notes_url,
    )

    async def work(session: AsyncSession, _: Settings) -> Release:
        return await service.publish_release(session, data, actor=CLI_ACTOR, now=now())

    release = in_session(work)
    emit(as_json, release_document(release), release_summary(release))


@releases_app.command("list")
def releases_list(
    product: str | None = None,
    channel: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    as_json: JsonFlag = False,
) -> None:
    """List releases, newest first."""

    async def work(session: AsyncSession, _: Settings) -> tuple[list[Release], str | None]:
        wanted = service.ReleaseFilter(product=product, channel=channel)
        return await service.list_releases(session, wanted, cursor=cursor, limit=limit)

    rows, next_cursor = in_session(work)
    emit_page(
        as_json,
        [release_document(row) for row in rows],
        [release_summary(row) for row in rows],
        next_cursor,
        empty="no releases",
    )


def _change(release_id: uuid.UUID, change: ReleaseChange, as_json: bool) -> None:
    async def work(session: AsyncSession, _: Settings) -> Release:
        return await service.change_release(session, release_id, change, actor=CLI_ACTOR, now=now())

    release = in_session(work)
    emit(as_json, release_document(release), release_summary(release))


@releases_app.command("rollout")
def releases_rollout(
    release_id: uuid.UUID,
    percent: Annotated[int, typer.Option(help="Share of machines offered it; 0 halts.")],
    as_json: JsonFlag = False,
) -> None:
    """Grow, shrink or halt (0) a release's rollout."""
    _change(release_id, parse(ReleaseChange, rollout_percent=percent), as_json)


@releases_app.command("yank")
def releases_yank(release_id: uuid.UUID, as_json: JsonFlag = False) -> None:
    """Withdraw a release for good: it is never offered again."""
    _change(release_id, ReleaseChange(yank=True), as_json)


@feeds_app.command("publish")
def feeds_publish(
    feed: Annotated[str, typer.Argument(help="Feed name, [a-z0-9-]{1,32}.")],
    version: Annotated[int, typer.Option(help="The set's version number.")],
    url: Annotated[str, typer.Option(help="Where installs download the full set.")],
    sha256: Annotated[str, typer.Option(help="SHA-256 hex of the full set.")],
    size: Annotated[int, typer.Option(help="Size of the full set in bytes.")],
    min_product_version: Annotated[
        str | None, typer.Option(help="The lowest product version that loads it.")
    ] = None,
    delta_from: Annotated[int | None, typer.Option(help="A delta from this version.")] = None,
    delta_url: Annotated[str | None, typer.Option(help="The delta's download.")] = None,
    delta_sha256: Annotated[str | None, typer.Option(help="SHA-256 hex of the delta.")] = None,
    delta_size: Annotated[int | None, typer.Option(help="Size of the delta in bytes.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish a version of a signature feed, with at most one delta."""
    delta = {"from": delta_from, "url": delta_url, "sha256": delta_sha256, "size": delta_size}
    given = [value is not None for value in delta.values()]
    if any(given) and not all(given):
        typer.echo(
            "error: a delta needs --delta-from, --delta-url, --delta-sha256 and --delta-size",
            err=True,
        )
        raise typer.Exit(2)
    if not re.fullmatch(PRODUCT_PATTERN, feed):
        typer.echo("error: FEED takes 1 to 32 of a-z, 0-9 and -", err=True)
        raise typer.Exit(2)
    data = parse(
        FeedVersionCreate,
        version=version,
        url=url,
        sha256=sha256,
        size=size,
        min_product_version=min_product_version,
        deltas=[delta] if all(given) else [],
    )

    async def work(session: AsyncSession, _: Settings) -> FeedVersion:
        return await service.publish_feed_version(session, feed, data, actor=CLI_ACTOR, now=now())

    published = in_session(work)
    emit(as_json, feed_version_document(published), feed_version_summary(published))


@feeds_app.command("list")
def feeds_list(
    feed: Annotated[str | None, typer.Argument(help="List this feed's versions.")] = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    as_json: JsonFlag = False,
) -> None:
    """List the feeds, or one feed's versions, newest first."""
    if feed is None:
        summaries = in_session(lambda session, _: service.feed_summaries(session))
        items = [
            {"feed": name, "latest_version": latest, "versions": count}
            for name, latest, count in summaries
        ]
        human = "\n".join(
            f"{name:<16} latest {latest}  ({count} versions)" for name, latest, count in summaries
        )
        emit(as_json, {"items": items}, human or "no feeds")
        return

    async def work(session: AsyncSession, _: Settings) -> tuple[list[FeedVersion], str | None]:
        return await service.list_feed_versions(session, feed, cursor=cursor, limit=limit)

    rows, next_cursor = in_session(work)
    emit_page(
        as_json,
        [feed_version_document(row) for row in rows],
        [feed_version_summary(row) for row in rows],
        next_cursor,
        empty="no versions",
    )
