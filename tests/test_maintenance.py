"""The maintenance runner: day keys die 48 hours after their day begins, and with them
every way back from a net_id to a network."""

from __future__ import annotations

import datetime as dt

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.core.jobs.repository import claim_run
from app.core.models import DayKey
from app.ingest.models import pings
from app.privacy.maintenance import run_maintenance
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import ping_body, send_ping


async def day_keys(app: FastAPI) -> list[dt.date]:
    async with app_parts.database(app).sessions() as session:
        return list(await session.scalars(select(DayKey.day).order_by(DayKey.day)))


async def net_ids(app: FastAPI) -> list[str]:
    async with app_parts.database(app).sessions() as session:
        rows = await session.scalars(select(pings.c.net_id).order_by(pings.c.received_at))
        return list(rows)


async def test_day_keys_are_destroyed_after_48_hours(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    clock.current = clock.current.replace(hour=12, minute=0, second=0)
    licence = await create_licence(client, app)
    first_day = clock.now().date()
    await send_ping(client, app, ping_body(licence["key"]))
    await send_ping(client, app, ping_body(licence["key"]))
    clock.advance(days=1)
    await send_ping(client, app, ping_body(licence["key"]))
    same_day, _, next_day = await net_ids(app)
    assert same_day == (await net_ids(app))[0]  # one network, one day: one net_id
    assert next_day != same_day  # a new day key: the days cannot be linked
    assert await day_keys(app) == [first_day, first_day + dt.timedelta(days=1)]

    clock.current = dt.datetime.combine(
        first_day + dt.timedelta(days=1), dt.time(23, 59), tzinfo=dt.UTC
    )
    kept = await run_maintenance(app_parts.database(app), app_parts.settings(app), clock.now())
    assert kept.ran and kept.day_keys_destroyed == 0
    clock.advance(minutes=1)  # 48 hours after the first day began
    report = await run_maintenance(app_parts.database(app), app_parts.settings(app), clock.now())
    assert report.day_keys_destroyed == 1
    assert await day_keys(app) == [first_day + dt.timedelta(days=1)]
    again = await run_maintenance(app_parts.database(app), app_parts.settings(app), clock.now())
    assert again.day_keys_destroyed == 0


async def test_a_background_job_is_claimed_once_per_period(
    app: FastAPI, clock: FrozenClock
) -> None:
    """Every node's timer wakes each period; only the first to claim it runs the job."""
    engine = app_parts.database(app).engine
    period_s = 3600.0
    nodes_waking = [await claim_run(engine, "maintenance", clock.now(), period_s) for _ in range(3)]
    assert nodes_waking == [True, False, False]
    clock.advance(minutes=30)
    assert not await claim_run(engine, "maintenance", clock.now(), period_s)
    assert await claim_run(engine, "detection_sweep", clock.now(), period_s)  # its own period
    # A timer a little early (timers drift between nodes) still finds the period due.
    clock.advance(minutes=25)
    assert await claim_run(engine, "maintenance", clock.now(), period_s)
    assert not await claim_run(engine, "maintenance", clock.now(), period_s)
