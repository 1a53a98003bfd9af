"""Group commit: pings join the batch being filled; a batch is one statement on
PostgreSQL (the pings' INSERT and the machines' upsert together; a multi-row INSERT and an
upsert in one transaction on SQLite), committed before any ping in it is answered."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core import metrics
from app.core.errors import StoreUnavailable
from app.ingest import repository
from app.licences import repository as licences

logger = logging.getLogger("callhome.ingest")


def to_the_minute(moment: dt.datetime) -> dt.datetime:
    """A ping's time as kept: the minute is all the rollups and detection need, and a
    time to the microsecond would let a proxy's access log put an address back on it."""
    return moment.replace(second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class PingRecord:
    licence_id: uuid.UUID
    received_at: dt.datetime
    machine_id: str
    net_id: str
    product: str
    version: str
    channel: str
    user_count: int
    signatures: dict[str, int] | None
    status: str
    seat: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "licence_id": self.licence_id,
            "received_at": to_the_minute(self.received_at),
            "machine_id": self.machine_id,
            "net_id": self.net_id,
            "product": self.product,
            "version": self.version,
            "channel": self.channel,
            "user_count": self.user_count,
            "signatures": self.signatures,
            "status": self.status,
            "seat": self.seat,
        }


def latest_per_machine(records: Sequence[PingRecord]) -> list[PingRecord]:
    latest: dict[tuple[uuid.UUID, str], PingRecord] = {}
    for record in records:
        key = (record.licence_id, record.machine_id)
        if key not in latest or latest[key].received_at <= record.received_at:
            latest[key] = record
    return [latest[key] for key in sorted(latest)]


class LicenceGone(Exception):
    """A licence of the batch was deleted after its pings passed the licence cache."""


def _licence_ids(records: Sequence[PingRecord]) -> list[uuid.UUID]:
    return sorted({record.licence_id for record in records})


@dataclass(frozen=True, slots=True)
class Link:
    """The writer's kept connection and, on PostgreSQL, the asyncpg connection under it,
    taken once: asking SQLAlchemy for it on every batch cost a fifth of a batch's CPU."""

    connection: AsyncConnection
    driver: Any

    @classmethod
    async def open(cls, engine: AsyncEngine) -> Link:
        connection = await engine.connect()
        if engine.dialect.name != "postgresql":
            return cls(connection, None)
        try:
            raw = await connection.get_raw_connection()
        except BaseException:
            await connection.close()
            raise
        return cls(connection, raw.driver_connection)


async def _write_postgresql(link: Link, records: Sequence[PingRecord]) -> None:
    try:
        await _store_postgresql(link, records)
    except asyncpg.ForeignKeyViolationError as error:
        raise LicenceGone from error
    except asyncpg.CheckViolationError as error:
        if "no partition" not in str(error):
            raise
        # The day's partition should exist already; if the clock outran the
        # creator, make it now rather than fail the batch.
        days = {record.received_at.date() for record in records}
        async with link.connection.begin():
            for day in sorted(days):
                await repository.ensure_ping_partitions(link.connection, day, days_ahead=0)
        await _store_postgresql(link, records)


async def _store_postgresql(link: Link, records: Sequence[PingRecord]) -> None:
    await repository.store_batch_postgresql(
        link.driver, [record.as_dict() for record in records], latest_per_machine(records)
    )


async def _write_sqlite(link: Link, records: Sequence[PingRecord]) -> None:
    try:
        await _insert_sqlite(link.connection, records)
    except IntegrityError as error:
        if "FOREIGN KEY" not in str(error.orig):
            raise
        raise LicenceGone from error


async def _insert_sqlite(connection: AsyncConnection, records: Sequence[PingRecord]) -> None:
    machines = latest_per_machine(records)
    async with connection.begin():
        await repository.insert_pings(connection, [record.as_dict() for record in records])
        await licences.record_sightings(connection, machines)


# Told how long each batch took to commit (or to fail): the server steers by it.
BatchObserver = Callable[[float], None]


class BatchWriter:
    """One flusher task; whatever arrives while a batch commits forms the next batch."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int,
        timeout_s: float,
        retry_after_s: int,
        observe: BatchObserver | None = None,
    ):
        self._engine = engine
        on_postgresql = engine.dialect.name == "postgresql"
        self._write = _write_postgresql if on_postgresql else _write_sqlite
        self._max_batch = max_batch
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._observe = observe
        self._pending: list[tuple[PingRecord, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._accepting = False
        self._task: asyncio.Task[None] | None = None
        # Kept between batches: a pool checkout with its liveness probe would
        # cost a round trip per batch. Dropped on any failure.
        self._link: Link | None = None

    def start(self) -> None:
        self._accepting = True
        self._task = asyncio.create_task(self._run(), name="callhome-batch-writer")

    async def stop(self) -> None:
        """Refuse new pings, write every one already accepted, then end."""
        self._accepting = False
        self._wakeup.set()
        if self._task is not None:
            await self._task
        await self._drop_connection(invalidate=False)

    async def _drop_connection(self, *, invalidate: bool) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        connection = link.connection
        with contextlib.suppress(Exception):
            if invalidate:
                await connection.invalidate()
            await connection.close()

    def submit(self, record: PingRecord) -> asyncio.Future[None]:
        """Queue a ping; the future resolves once it is committed, or fails with 503."""
        if not self._accepting:
            raise StoreUnavailable(self._retry_after_s)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        self._wakeup.set()
        return future

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def _run(self) -> None:
        while self._accepting or self._pending:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._flush(batch)

    async def _write_known(self, link: Link, records: Sequence[PingRecord]) -> None:
        """Write the batch; pings of a licence deleted meanwhile are dropped, not stored.

        Their licence and everything about it is gone, so there is nothing to keep them
        for; failing the whole batch would turn every other ping in it into a 503.
        """
        try:
            await self._write(link, records)
        except LicenceGone:
            existing = await licences.existing_licence_ids(link.connection, _licence_ids(records))
            kept = [record for record in records if record.licence_id in existing]
            logger.info("%d pings of deleted licences dropped", len(records) - len(kept))
            if kept:
                await self._write(link, kept)

    async def _flush(self, batch: list[tuple[PingRecord, asyncio.Future[None]]]) -> None:
        started = time.perf_counter()
        records = [record for record, _ in batch]
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._link is None:
                    self._link = await Link.open(self._engine)
                await self._write_known(self._link, records)
        except Exception as error:
            failure = error
            logger.warning("batch of %d pings not stored: %s", len(batch), type(error).__name__)
            await self._drop_connection(invalidate=True)
        elapsed_s = time.perf_counter() - started
        metrics.observe_batch(len(batch), elapsed_s, failure is None, len(self._pending))
        if self._observe is not None:
            self._observe(elapsed_s)
        for _, future in batch:
            if future.done():
                continue
            if failure is None:
                future.set_result(None)
            else:
                future.set_exception(StoreUnavailable(self._retry_after_s))
