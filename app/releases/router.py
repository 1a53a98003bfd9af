"""Release and feed publishing for staff, and the signed news answers for installs."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from starlette.responses import Response

from app.core.clock import rfc3339
from app.core.deps import Now, PseudonymsDep, ReadSession, SettingsDep, SignerDep, WriteSession
from app.core.errors import (
    CallhomeError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    StoreUnavailable,
    problem_responses,
)
from app.core.json import dumps
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, CursorQuery
from app.core.ratelimit import NetworkLimited
from app.core.schemas import PRODUCT_PATTERN
from app.core.settings import Settings
from app.core.signing import SIGNATURE_HEADER, Signer
from app.licences.cache import LicenceSnapshot, licence_status
from app.licences.lookup import LicenceLookupDep
from app.releases import service
from app.releases.auth import ReleasesWriter
from app.releases.catalog import CatalogDep
from app.releases.schemas import (
    CHANNEL_PATTERN,
    VERSION_PATTERN,
    FeedList,
    FeedSummary,
    FeedVersionCreate,
    FeedVersionOut,
    FeedVersionPage,
    ReleaseChange,
    ReleaseCreate,
    ReleaseOut,
    ReleasePage,
)

admin_router = APIRouter(
    prefix="/v1/admin",
    tags=["releases"],
    responses=problem_responses(InvalidInput, Forbidden),
)
news_router = APIRouter(prefix="/v1", tags=["updates"])

FeedName = Annotated[str, Path(pattern=PRODUCT_PATTERN)]


@admin_router.post("/releases", status_code=201, responses=problem_responses(Conflict))
async def publish_release(
    data: ReleaseCreate, staff: ReleasesWriter, session: WriteSession, now: Now
) -> ReleaseOut:
    release = await service.publish_release(session, data, actor=staff.name, now=now)
    return ReleaseOut.model_validate(release)


@admin_router.get("/releases")
async def list_releases(
    _: ReleasesWriter,
    session: ReadSession,
    product: Annotated[str | None, Query(pattern=PRODUCT_PATTERN)] = None,
    channel: Annotated[str | None, Query(pattern=CHANNEL_PATTERN)] = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> ReleasePage:
    wanted = service.ReleaseFilter(product=product, channel=channel)
    releases, next_cursor = await service.list_releases(session, wanted, cursor=cursor, limit=limit)
    return ReleasePage(
        items=[ReleaseOut.model_validate(release) for release in releases],
        next_cursor=next_cursor,
    )


@admin_router.patch("/releases/{release_id}", responses=problem_responses(NotFound, Conflict))
async def change_release(
    release_id: uuid.UUID,
    change: ReleaseChange,
    staff: ReleasesWriter,
    session: WriteSession,
    now: Now,
) -> ReleaseOut:
    release = await service.change_release(session, release_id, change, actor=staff.name, now=now)
    return ReleaseOut.model_validate(release)


@admin_router.post("/feeds/{feed}/versions", status_code=201, responses=problem_responses(Conflict))
async def publish_feed_version(
    feed: FeedName,
    data: FeedVersionCreate,
    staff: ReleasesWriter,
    session: WriteSession,
    now: Now,
) -> FeedVersionOut:
    feed_version = await service.publish_feed_version(
        session, feed, data, actor=staff.name, now=now
    )
    return FeedVersionOut.model_validate(feed_version)


@admin_router.get("/feeds")
async def list_feeds(_: ReleasesWriter, session: ReadSession) -> FeedList:
    summaries = await service.feed_summaries(session)
    return FeedList(
        items=[
            FeedSummary(feed=feed, latest_version=latest, versions=count)
            for feed, latest, count in summaries
        ]
    )


@admin_router.get("/feeds/{feed}/versions")
async def list_feed_versions(
    feed: FeedName,
    _: ReleasesWriter,
    session: ReadSession,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> FeedVersionPage:
    versions, next_cursor = await service.list_feed_versions(
        session, feed, cursor=cursor, limit=limit
    )
    return FeedVersionPage(
        items=[FeedVersionOut.model_validate(version) for version in versions],
        next_cursor=next_cursor,
    )


# -- news for installs --------------------------------------------------------


class LicenceRequired(CallhomeError):
    status = 401
    code = "licence-required"
    title = "A valid licence key of this product is required"

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": "Licence"})


class NotEntitled(CallhomeError):
    status = 403
    code = "not-entitled"
    title = "The licence is not entitled to this feed"


_LICENCE_HEADER = re.compile(r"Licence ([\x20-\x7e]{8,128})")
NEWS_ERRORS = (LicenceRequired, InvalidInput, RateLimited, StoreUnavailable)


async def _licence(
    _: NetworkLimited,
    licences: LicenceLookupDep,
    pseudonyms: PseudonymsDep,
    now: Now,
    authorization: Annotated[str | None, Header()] = None,
) -> LicenceSnapshot:
    """The valid licence whose key the `Authorization: Licence <key>` header carries."""
    matched = _LICENCE_HEADER.fullmatch(authorization or "")
    if matched is None:
        raise LicenceRequired()
    found = await licences.by_key_hash(pseudonyms.key_hash(matched.group(1)), now)
    if found is None or licence_status(found.licence, now) != "valid":
        raise LicenceRequired()
    licence: LicenceSnapshot = found.licence
    return licence


LicensedBy = Annotated[LicenceSnapshot, Depends(_licence)]


def news_window(settings: Settings, now: dt.datetime) -> dict[str, str]:
    """`issued_at` and `expires_at` of a news answer: issued at the start of the current
    epoch, so an unchanged offer keeps its body (and its ETag) until the epoch ends."""
    epoch_s = settings.news_epoch_s
    issued_at = dt.datetime.fromtimestamp(int(now.timestamp()) // epoch_s * epoch_s, dt.UTC)
    expires_at = issued_at + dt.timedelta(seconds=settings.news_validity_s)
    return {"issued_at": rfc3339(issued_at), "expires_at": rfc3339(expires_at)}


def _signed(
    signer: Signer,
    settings: Settings,
    now: dt.datetime,
    document: dict[str, Any],
    if_none_match: str | None,
) -> Response:
    """The answer signed like the ping's. Its only times are those of its epoch, so an
    unchanged offer keeps its body, hence its ETag, and a client may revalidate for free."""
    body = dumps(news_window(settings, now) | document)
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if if_none_match is not None and {etag, "*"} & {
        tag.strip().removeprefix("W/") for tag in if_none_match.split(",")
    }:
        return Response(status_code=304, headers=headers)
    headers[SIGNATURE_HEADER] = signer.signature_header(body)
    return Response(body, media_type="application/json", headers=headers)


@news_router.get(
    "/updates/{product}",
    response_class=Response,
    responses={
        200: {"description": "The signed offer: `update` is null when none waits"},
        304: {"description": "The offer is unchanged since the ETag sent"},
        **problem_responses(*NEWS_ERRORS),
    },
)
async def update_news(
    licence: LicensedBy,
    catalog: CatalogDep,
    signer: SignerDep,
    settings: SettingsDep,
    now: Now,
    product: Annotated[str, Path(pattern=PRODUCT_PATTERN)],
    version: Annotated[str, Query(pattern=VERSION_PATTERN)],
    channel: Annotated[str, Query(pattern=CHANNEL_PATTERN)] = "stable",
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    """The newest release this licence may take. Without a machine to place in a
    rollout, only releases rolled out to everyone are offered here."""
    if licence.product != product:
        raise LicenceRequired()
    update = catalog.update_for(licence, channel, version, machine_id=None)
    document = {"product": product, "channel": channel, "version": version, "update": update}
    return _signed(signer, settings, now, document, if_none_match)


@news_router.get(
    "/feeds/{feed}",
    response_class=Response,
    responses={
        200: {"description": "The signed offer: `signature_set` is null when none waits"},
        304: {"description": "The offer is unchanged since the ETag sent"},
        **problem_responses(*NEWS_ERRORS, NotEntitled),
    },
)
async def feed_news(
    licence: LicensedBy,
    catalog: CatalogDep,
    signer: SignerDep,
    settings: SettingsDep,
    now: Now,
    feed: FeedName,
    version: Annotated[int, Query(ge=0, le=2**53)],
    product_version: Annotated[
        str | None,
        Query(pattern=VERSION_PATTERN, description="Sets that need a minimum need it"),
    ] = None,
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    """The signature set to fetch next, as a delta from `version` where one exists."""
    if feed not in licence.entitlements:
        raise NotEntitled()
    offer = catalog.signature_set_for(licence, feed, version, product_version)
    document = {
        "feed": feed,
        "version": version,
        "product_version": product_version,
        "signature_set": offer,
    }
    return _signed(signer, settings, now, document, if_none_match)
