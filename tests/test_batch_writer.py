"""The batch writer stores what it acknowledges, whatever the batch holds: one machine
twice, a ping that arrived late, a day whose partition does not exist yet."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.ingest.models import pings
from app.ingest.writer import BatchWriter, PingRecord
from app.licences.models import Machine
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence


def record(licence_id: uuid.UUID, machine_id: str, at: dt.datetime, version: str) -> PingRecord:
    return PingRecord(
        licence_id=licence_id,
        received_at=at,
        machine_id=machine_id,
        net_id="0123456789abcdef",
        product="mail",
        version=version,
        channel="stable",
        user_count=3,
        signatures={"spam": 12} if version == "8.2.1" else None,
        status="valid",
        seat="granted",
    )


async def write(app: FastAPI, records: list[PingRecord]) -> None:
    """One batch: every record is submitted before the writer takes any."""
    writer = BatchWriter(
        app_parts.database(app).engine, max_batch=100, timeout_s=5, retry_after_s=1
    )
    writer.start()
    try:
        acknowledged = [writer.submit(each) for each in records]
        await asyncio.gather(*acknowledged)
    finally:
        await writer.stop()


async def test_one_batch_stores_every_ping_and_each_machine_once_at_its_latest(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = uuid.UUID((await create_licence(client, app, max_machines=5))["id"])
    now = clock.now()
    await write(
        app,
        [
            record(licence, "a" * 32, now, "8.2.1"),
            record(licence, "a" * 32, now - dt.timedelta(minutes=5), "8.1.0"),  # arrived late
            record(licence, "b" * 32, now, "8.1.0"),
        ],
    )
    async with app_parts.database(app).sessions() as session:
        stored = (await session.execute(select(pings).order_by(pings.c.received_at))).all()
        machines = {m.machine_id: m for m in (await session.scalars(select(Machine))).all()}
    assert len(stored) == 3
    assert [row.signatures for row in stored if row.version == "8.2.1"] == [{"spam": 12}]
    assert all(row.signatures is None for row in stored if row.version == "8.1.0")
    # The late ping is kept, but does not move its machine's last sighting back.
    assert machines["a" * 32].last_version == "8.2.1"
    assert machines["a" * 32].last_seen_at.replace(tzinfo=dt.UTC) == now
    assert set(machines) == {"a" * 32, "b" * 32}


async def test_a_ping_on_a_day_without_its_partition_is_stored(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    """Partitions are made days ahead; a clock that outran them (a server down for weeks,
    a clock set forward) must not cost the batch: the day's partition is made then."""
    licence = uuid.UUID((await create_licence(client, app, max_machines=5))["id"])
    far_ahead = clock.now() + dt.timedelta(days=30)
    await write(app, [record(licence, "c" * 32, far_ahead, "8.2.1")])
    async with app_parts.database(app).sessions() as session:
        stored = (await session.execute(select(pings.c.received_at))).scalars().all()
    assert [moment.replace(tzinfo=dt.UTC) for moment in stored] == [
        far_ahead.replace(second=0, microsecond=0)
    ]
