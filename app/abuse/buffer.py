"""Detection in the server: ping-path findings flushed every few seconds, and the sweep.

The ping only notes which licence to judge (O(1), no store access); the
flusher judges them with the sweep's own functions. Findings lost in a crash
are found again by the next sweep, which reads only the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable

from app.abuse.detection import Noted, SweepOutcome, judge_noted, sweep
from app.abuse.models import AbuseReport
from app.core import metrics
from app.core.clock import Clock
from app.core.database import Database
from app.core.jobs.repository import claim_run
from app.core.settings import Settings

logger = logging.getLogger("callhome.abuse")

SWEEP_JOB = "detection_sweep"


class FindingsBuffer:
    def __init__(self) -> None:
        self._noted = Noted()

    def note_machines_over_limit(self, licence_id: uuid.UUID, at: dt.datetime) -> None:
        """A new machine took the licence over its limit at `at` (the first of two checks)."""
        self._noted.machines_over_limit.setdefault(licence_id, at)

    def note_users_over_limit(self, licence_id: uuid.UUID) -> None:
        self._noted.users_over_limit.add(licence_id)

    def drain(self) -> Noted:
        noted, self._noted = self._noted, Noted()
        return noted

    def restore(self, noted: Noted) -> None:
        """Put back findings a failed flush could not write."""
        for licence_id, at in noted.machines_over_limit.items():
            self.note_machines_over_limit(licence_id, at)
        self._noted.users_over_limit |= noted.users_over_limit


def _count_opened(reports: list[AbuseReport], now: dt.datetime) -> None:
    """Count, once committed, the reports this round opened (the others it updated)."""
    metrics.count_reports_opened([report.kind for report in reports if report.opened_at == now])


class AbuseWorker:
    """The server's background detection: the findings flusher and the periodic sweep."""

    def __init__(self, database: Database, settings: Settings, clock: Clock):
        self.findings = FindingsBuffer()
        self._database = database
        self._settings = settings
        self._clock = clock
        # A flush awaited by a caller waits for one already running, so that
        # everything noted before the call is written when it returns.
        self._flushing = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks.append(
            asyncio.create_task(
                self._every(self._settings.findings_flush_s, self.flush), name="callhome-findings"
            )
        )
        if self._settings.detect_interval_s > 0:
            self._tasks.append(
                asyncio.create_task(
                    self._every(self._settings.detect_interval_s, self.sweep_when_due),
                    name="callhome-detect",
                )
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        try:
            await self.flush()
        except Exception as error:
            # Shutting down with the store away: the next sweep finds these again.
            logger.warning("findings not written at shutdown: %s", type(error).__name__)

    async def flush(self) -> None:
        async with self._flushing:
            noted = self.findings.drain()
            if not noted:
                return
            now = self._clock.now()
            try:
                async with self._database.sessions() as session, session.begin():
                    reports = await judge_noted(session, noted, now)
            except Exception:
                self.findings.restore(noted)
                raise
            _count_opened(reports, now)

    async def sweep(self) -> SweepOutcome | None:
        now = self._clock.now()
        async with self._database.sessions() as session, session.begin():
            outcome = await sweep(session, self._settings, now)
        if outcome is not None:
            _count_opened(outcome.reports, now)
        return outcome

    async def sweep_when_due(self) -> None:
        """The timer's sweep: every node wakes each interval, the first to claim it sweeps."""
        now = self._clock.now()
        if not await claim_run(
            self._database.engine, SWEEP_JOB, now, self._settings.detect_interval_s
        ):
            return
        outcome = await self.sweep()
        if outcome is not None:
            logger.info(
                "detection sweep: %d licences judged, %d reports",
                outcome.licences_judged,
                len(outcome.reports),
            )

    @staticmethod
    async def _every(interval_s: float, work: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await work()
            except Exception as error:
                # The store may be down for a while; the next round tries again.
                logger.warning("abuse detection round failed: %s", type(error).__name__)
