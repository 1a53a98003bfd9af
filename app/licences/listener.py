"""Drop licences other nodes changed from this node's cache: as PostgreSQL notifies them, or,
on an embedded store, as the change counter moves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from sqlalchemy.exc import SQLAlchemyError

from app.core.database import Database
from app.core.notifications import NotificationListener
from app.licences import repository
from app.licences.cache import LicenceCache
from app.licences.changes import NODE_ID, NOTIFY_CHANNEL


def follow_licence_changes(listener: NotificationListener, cache: LicenceCache) -> None:
    def invalidate(payload: str) -> None:
        licence_id, _, node = payload.partition(":")
        if node == NODE_ID:
            return
        with contextlib.suppress(ValueError):
            cache.invalidate(uuid.UUID(licence_id))

    listener.subscribe(NOTIFY_CHANNEL, invalidate)
    # Changes made while we were not listening are unknown: start afresh.
    listener.on_gap(cache.clear)


logger = logging.getLogger("callhome.licences")


class ChangeCounterWatch:
    """Clears the cache when another process on the same SQLite file changed a licence
    (the CLI, another worker): a suspension takes effect within one poll, not a cache TTL."""

    def __init__(self, database: Database, cache: LicenceCache, *, interval_s: float):
        self._database = database
        self._cache = cache
        self._interval_s = interval_s
        self._seen: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def poll(self) -> None:
        async with self._database.engine.connect() as connection:
            counted = await repository.licence_changes_counted(connection)
        if self._seen is not None and counted != self._seen:
            self._cache.clear()
        self._seen = counted

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        # The first poll is the starter's, before start(): polling again at once would only
        # clear what the first requests have cached since.
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.poll()
            except (OSError, SQLAlchemyError):
                # A store held locked by a long write: the next poll tries again, and the
                # cache's TTL still bounds how long an entry may be stale.
                logger.debug("licence change counter unreadable this time")
