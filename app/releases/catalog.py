"""Every release and signature set, held in memory and indexed so a ping plans its offer
without reading the store.

Refreshed on publish: in this process right after commit, on other nodes by
LISTEN/NOTIFY on PostgreSQL, and by a short periodic reread on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends
from packaging.version import InvalidVersion, Version
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.core import notifications
from app.core.components import component
from app.core.outage import is_store_trouble
from app.licences.cache import LicenceSnapshot
from app.releases.downloads import DownloadLinks
from app.releases.models import FeedVersion, Release

logger = logging.getLogger("callhome.releases")

NOTIFY_CHANNEL = "callhome_releases"
_PENDING = "changed_catalog_entries"
RETRY_DELAY_S = 5.0

Offer = dict[str, Any]
# The channel an install is on when it names none (the ping contract's default).
DEFAULT_CHANNEL = "stable"
# What a ping record keeps instead of a channel name that is not published.
UNKNOWN_NAME = "unknown"


@functools.lru_cache(maxsize=4096)
def parse_version(text: str) -> Version | None:
    """The fleet reports few distinct versions: parse each once. None when unparsable."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


def rollout_bucket(machine_id: str, release_id: uuid.UUID) -> int:
    """A machine's fixed place (0..99) in a release's rollout: it never moves, so a
    rollout grows without flapping, and each release draws its own sample."""
    digest = hashlib.sha256(f"{machine_id}:{release_id}".encode()).digest()
    return int.from_bytes(digest, "big") % 100


@dataclass(frozen=True, slots=True, eq=False)
class ReleaseEntry:
    id: uuid.UUID
    product: str
    channel: str
    version: Version
    published_on: dt.date
    min_from_version: Version | None
    rollout_percent: int
    yanked: bool
    # The answer's `update` object, built once and shared by every ping.
    offer: Offer

    @classmethod
    def of(cls, release: Release) -> ReleaseEntry:
        return cls(
            id=release.id,
            product=release.product,
            channel=release.channel,
            version=Version(release.version),
            published_on=release.published_at.date(),
            min_from_version=(
                Version(release.min_from_version) if release.min_from_version else None
            ),
            rollout_percent=release.rollout_percent,
            yanked=release.yanked_at is not None,
            offer={
                "version": release.version,
                "url": release.url,
                "sha256": release.sha256,
                "size": release.size,
                "notes_url": release.notes_url,
                "critical": release.critical,
            },
        )

    def reaches(self, machine_id: str | None) -> bool:
        """Whether the rollout includes the machine; without one, only a complete rollout."""
        if self.rollout_percent >= 100:
            return True
        if self.rollout_percent <= 0 or machine_id is None:
            return False
        return rollout_bucket(machine_id, self.id) < self.rollout_percent


@dataclass(frozen=True, slots=True, eq=False)
class FeedEntry:
    feed: str
    version: int
    min_product_version: Version | None
    size: int
    # The answer's per-feed object for the full set, built once.
    full: Offer
    # The deltas that lead here, by the version they start from, as chain steps.
    steps: dict[int, Offer]

    @classmethod
    def of(cls, feed_version: FeedVersion) -> FeedEntry:
        full = {
            "version": feed_version.version,
            "url": feed_version.url,
            "sha256": feed_version.sha256,
            "size": feed_version.size,
            "delta": None,
            "chain": [],
        }
        steps = {
            delta.from_version: {
                "from": delta.from_version,
                "to": feed_version.version,
                "url": delta.url,
                "sha256": delta.sha256,
                "size": delta.size,
            }
            for delta in feed_version.deltas
        }
        return cls(
            feed=feed_version.feed,
            version=feed_version.version,
            min_product_version=(
                Version(feed_version.min_product_version)
                if feed_version.min_product_version
                else None
            ),
            size=feed_version.size,
            full=full,
            steps=steps,
        )


def plan_chain(sets: Iterable[FeedEntry], installed: int, target: FeedEntry) -> Offer:
    """The offer of `target` for an install at `installed`: the cheapest chain of deltas
    (ordered, fewest bytes) when one leads there and costs no more than the full set,
    else the full set. `sets` may come in any order; deltas only lead to newer versions."""
    # cheapest[v] = (bytes, steps) of the cheapest chain from `installed` to v
    cheapest: dict[int, tuple[int, tuple[Offer, ...]]] = {installed: (0, ())}
    for entry in sorted(sets, key=lambda e: e.version):
        if entry.version <= installed or entry.version > target.version:
            continue
        for origin, step in entry.steps.items():
            reached = cheapest.get(origin)
            if reached is None:
                continue
            cost = reached[0] + int(step["size"])
            known = cheapest.get(entry.version)
            if known is None or cost < known[0]:
                cheapest[entry.version] = (cost, (*reached[1], step))
    found = cheapest.get(target.version)
    if found is None or found[0] > target.size:
        return target.full
    chain = list(found[1])
    only = chain[0] if len(chain) == 1 else None
    # `delta` is the one-step plan in the shape older SDKs read; `chain` is every plan.
    delta = (
        None if only is None else {name: only[name] for name in ("from", "url", "sha256", "size")}
    )
    return target.full | {"delta": delta, "chain": chain}


CatalogEntry = ReleaseEntry | FeedEntry


def newest_update(
    track: Iterable[ReleaseEntry],
    installed: Version,
    updates_until: dt.date | None,
    machine_id: str | None,
) -> Offer | None:
    """The newest release the install may take from `track` (newest first), or None."""
    for release in track:
        if release.version <= installed:
            return None  # never a downgrade, nor the version it runs
        if updates_until is not None and release.published_on > updates_until:
            continue  # released after the maintenance ended
        if release.min_from_version is not None and installed < release.min_from_version:
            continue  # too far behind: an older release is its stepping stone
        if release.reaches(machine_id):
            return release.offer
    return None


def newest_signature_set(
    sets: tuple[FeedEntry, ...], installed: int, product_version: Version | None
) -> FeedEntry | None:
    """The newest set (`sets` newest first) newer than the installed one that the product
    can load, or None."""
    for entry in sets:
        if entry.version <= installed:
            return None
        if entry.min_product_version is not None and (
            product_version is None or product_version < entry.min_product_version
        ):
            continue
        return entry
    return None


# Plans remembered per catalog index: (feed, installed, target) -> offer. The fleet
# reports few distinct installed versions, so the planner runs once for each.
MAX_REMEMBERED_PLANS = 10_000


@dataclass(frozen=True, slots=True)
class CatalogIndex:
    """Per (product, channel) the releases still offered, per feed its sets; newest first."""

    tracks: dict[tuple[str, str], tuple[ReleaseEntry, ...]]
    feeds: dict[str, tuple[FeedEntry, ...]]
    # Every (product, channel) with a release, yanked ones included: the names published.
    channels: frozenset[tuple[str, str]]
    plans: dict[tuple[str, int, int], Offer] = field(default_factory=dict)

    def signature_set(
        self, feed: str, installed: int, product_version: Version | None
    ) -> Offer | None:
        """The offer of the newest loadable set of `feed`, planned as a chain where cheaper."""
        sets = self.feeds.get(feed)
        target = None if sets is None else newest_signature_set(sets, installed, product_version)
        if sets is None or target is None:
            return None
        key = (feed, installed, target.version)
        offer = self.plans.get(key)
        if offer is None:
            offer = plan_chain(sets, installed, target)
            if len(self.plans) >= MAX_REMEMBERED_PLANS:
                self.plans.clear()
            self.plans[key] = offer
        return offer

    @classmethod
    def build(cls, releases: Iterable[ReleaseEntry], sets: Iterable[FeedEntry]) -> CatalogIndex:
        tracks: dict[tuple[str, str], list[ReleaseEntry]] = {}
        for release in releases:
            if not release.yanked:
                tracks.setdefault((release.product, release.channel), []).append(release)
        channels = frozenset((release.product, release.channel) for release in releases)
        feeds: dict[str, list[FeedEntry]] = {}
        for entry in sets:
            feeds.setdefault(entry.feed, []).append(entry)
        return cls(
            tracks={
                track: tuple(sorted(entries, key=lambda r: r.version, reverse=True))
                for track, entries in tracks.items()
            },
            feeds={
                feed: tuple(sorted(entries, key=lambda e: e.version, reverse=True))
                for feed, entries in feeds.items()
            },
            channels=channels,
        )


Loader = Callable[[], Awaitable[tuple[list[ReleaseEntry], list[FeedEntry]]]]


class Catalog:
    """The in-process catalog: planning is pure in-memory work on an immutable index."""

    def __init__(
        self, load: Loader, *, refresh_interval_s: float | None, links: DownloadLinks | None = None
    ):
        self._load = load
        self._links = links
        self._refresh_interval_s = refresh_interval_s
        self._releases: dict[uuid.UUID, ReleaseEntry] = {}
        self._sets: dict[tuple[str, int], FeedEntry] = {}
        self._index = CatalogIndex.build((), ())
        # Bumped by every change applied here, so a reload that read the store
        # before a local commit cannot put an older picture back.
        self._generation = 0
        self._stale = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- planning (the hot path) ---------------------------------------------

    def update_for(
        self,
        licence: LicenceSnapshot,
        channel: str,
        version: str,
        machine_id: str | None,
    ) -> Offer | None:
        track = self._index.tracks.get((licence.product, channel))
        installed = parse_version(version) if track else None
        if installed is None or track is None:
            return None
        return self._for(
            licence, newest_update(track, installed, licence.updates_until, machine_id)
        )

    def signature_set_for(
        self, licence: LicenceSnapshot, feed: str, installed: int, product_version: str | None
    ) -> Offer | None:
        if feed not in licence.entitlements:
            return None
        loads_from = parse_version(product_version) if product_version else None
        return self._for(licence, self._index.signature_set(feed, installed, loads_from))

    def _for(self, licence: LicenceSnapshot, offer: Offer | None) -> Offer | None:
        """The offer with its download URLs bound to the licence, when links are signed."""
        return offer if self._links is None else self._links.sign_offer(offer, licence.id)

    def signature_sets_for(
        self, licence: LicenceSnapshot, installed: dict[str, int] | None, product_version: str
    ) -> dict[str, Offer]:
        """Per feed the install reports and the licence is entitled to, the set to fetch."""
        planned: dict[str, Offer] = {}
        if not installed or not licence.entitlements:
            return planned
        for feed, version in installed.items():
            offer = self.signature_set_for(licence, feed, version, product_version)
            if offer is not None:
                planned[feed] = offer
        return planned

    # -- what a ping record keeps ---------------------------------------------

    def channel_to_keep(self, product: str, channel: str) -> str:
        """The channel as stored: a name published for the product (or the default),
        else `unknown`; any other name an install sends is free text, never kept."""
        if channel == DEFAULT_CHANNEL or (product, channel) in self._index.channels:
            return channel
        return UNKNOWN_NAME

    def signatures_to_keep(self, installed: dict[str, int] | None) -> dict[str, int] | None:
        """The installed signature sets of published feeds; other feed names are dropped."""
        if not installed:
            return installed
        return {feed: version for feed, version in installed.items() if feed in self._index.feeds}

    # -- keeping it current --------------------------------------------------

    def apply(self, entry: CatalogEntry) -> None:
        """Take in an entry committed in this process, at once."""
        if isinstance(entry, ReleaseEntry):
            self._releases[entry.id] = entry
        else:
            self._sets[(entry.feed, entry.version)] = entry
        self._generation += 1
        self._index = CatalogIndex.build(self._releases.values(), self._sets.values())

    def request_refresh(self) -> None:
        self._stale.set()

    async def refresh(self) -> None:
        """Reread everything from the store (the catalog is small: releases, not the fleet)."""
        while True:
            generation = self._generation
            releases, sets = await self._load()
            if generation == self._generation:
                break
        self._releases = {release.id: release for release in releases}
        self._sets = {(entry.feed, entry.version): entry for entry in sets}
        self._index = CatalogIndex.build(releases, sets)

    def follow(self, listener: notifications.NotificationListener) -> None:
        """Reread when another node publishes, or when notifications may have been missed."""
        listener.subscribe(NOTIFY_CHANNEL, lambda _payload: self.request_refresh())
        listener.on_gap(self.request_refresh)

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_current(), name="callhome-catalog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _keep_current(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._refresh_interval_s):
                    await self._stale.wait()
            self._stale.clear()
            try:
                await self.refresh()
            except Exception as error:
                # The last picture keeps serving; try again soon.
                if is_store_trouble(error):
                    logger.warning(
                        "could not reread the release catalog: store unavailable (%s)",
                        type(error).__name__,
                    )
                else:
                    logger.exception("could not reread the release catalog")
                await asyncio.sleep(RETRY_DELAY_S)
                self._stale.set()


async def mark_changed(session: AsyncSession, entry: CatalogEntry) -> None:
    """Hand `entry` to this process's catalog after commit, and tell the other nodes."""
    notifications.defer_until_commit(session, _PENDING, entry)
    await notifications.notify(session, NOTIFY_CHANNEL, entry.__class__.__name__)


def on_commit(session_class: type[Session], catalog: Catalog) -> None:
    notifications.on_commit(session_class, _PENDING, catalog.apply)


CatalogDep = Annotated[Catalog, Depends(component(Catalog))]
