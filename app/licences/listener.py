"""LISTEN for licence changes on PostgreSQL and drop the changed entries from the cache."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from app.licences.cache import LicenceCache
from app.licences.changes import NODE_ID, NOTIFY_CHANNEL

logger = logging.getLogger("callhome.licences")

RECONNECT_DELAY_S = (0.5, 1, 2, 5, 10)


class ChangeListener:
    def __init__(self, url: URL, cache: LicenceCache):
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._cache = cache
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="callhome-licence-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        licence_id, _, node = payload.partition(":")
        if node == NODE_ID:
            return
        with contextlib.suppress(ValueError):
            self._cache.invalidate(uuid.UUID(licence_id))

    async def _run(self) -> None:
        failures = 0
        while True:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(self._dsn, timeout=5)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                await asyncio.sleep(RECONNECT_DELAY_S[min(failures, len(RECONNECT_DELAY_S) - 1)])
                failures += 1
                continue
            try:
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
                # Changes made while we were not listening are unknown: start afresh.
                self._cache.clear()
                failures = 0
                self.connected.set()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(10):
                            await lost.wait()
                    if not lost.is_set():
                        await connection.execute("SELECT 1")
            except (OSError, asyncpg.PostgresError, TimeoutError):
                pass
            finally:
                self.connected.clear()
                self._cache.clear()
                with contextlib.suppress(Exception):
                    await connection.close(timeout=1)
            logger.warning("lost the licence change feed; reconnecting")
