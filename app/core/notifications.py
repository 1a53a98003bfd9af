"""Tell in-process caches of committed changes: here after commit, other nodes by LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.core.database import execute_core

logger = logging.getLogger("callhome.notifications")

RECONNECT_DELAY_S = (0.5, 1, 2, 5, 10)
# A silent connection may be a dead one: probe it this often.
PROBE_INTERVAL_S = 10


def defer_until_commit(session: AsyncSession, key: str, item: object) -> None:
    """Hold `item` until the session commits; a rollback drops it (see `on_commit`)."""
    session.info.setdefault(key, []).append(item)


def on_commit(session_class: type[Session], key: str, handle: Callable[[Any], None]) -> None:
    """Call `handle` in this process for each item a committed session deferred under `key`."""

    @event.listens_for(session_class, "after_commit")
    def _after_commit(session: Session) -> None:
        for item in session.info.pop(key, ()):
            handle(item)

    @event.listens_for(session_class, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(key, None)


_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


async def notify(session: AsyncSession, channel: str, payload: str) -> None:
    """NOTIFY every listening node when the session commits (PostgreSQL only; SQLite has none)."""
    if session.get_bind().dialect.name == "postgresql":
        await execute_core(session, _NOTIFY, {"channel": channel, "payload": payload})


class NotificationListener:
    """One connection that LISTENs on several channels and reconnects when it is lost."""

    def __init__(self, url: URL):
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._handlers: dict[str, Callable[[str], None]] = {}
        self._on_gap: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def subscribe(self, channel: str, handle: Callable[[str], None]) -> None:
        """Call `handle(payload)` for every notification on `channel`; subscribe before start."""
        self._handlers[channel] = handle

    def on_gap(self, handle: Callable[[], None]) -> None:
        """Call `handle` whenever notifications may have been missed: on losing the
        connection, and again once listening anew (what changed in between is unknown)."""
        self._on_gap.append(handle)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="callhome-notification-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _gap(self) -> None:
        for handle in self._on_gap:
            handle()

    def _dispatch(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        self._handlers[channel](payload)

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
                for channel in self._handlers:
                    await connection.add_listener(channel, self._dispatch)
                self._gap()
                failures = 0
                self.connected.set()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(PROBE_INTERVAL_S):
                            await lost.wait()
                    if not lost.is_set():
                        await connection.execute("SELECT 1")
            except (OSError, asyncpg.PostgresError, TimeoutError):
                pass
            finally:
                self.connected.clear()
                self._gap()
                with contextlib.suppress(Exception):
                    await connection.close(timeout=1)
            logger.warning("lost the change notification feed; reconnecting")
