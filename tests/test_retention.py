"""Retention as time passes: pings roll up into daily rows and expire, machines and
rollups expire, day keys die; an interrupted run is finished by the next one."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from app.core.database import Database
from app.core.models import DayKey
from app.core.pseudonyms import DayKeyRing, net_id
from app.ingest.models import DailyUsage, pings
from app.ingest.repository import partition_name
from app.licences.models import Machine
from app.privacy import retention
from app.privacy.maintenance import MaintenanceReport, run_maintenance
from app.privacy.usage import DayUsage, daily_usage
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import computer_id, ping
from tests.support.stores import Store

NETWORK_A, NETWORK_A_AGAIN, NETWORK_B = "203.0.113.7", "203.0.113.8", "198.51.100.9"


@dataclass
class Fleet:
    a: dict[str, Any]
    b: dict[str, Any]
    day0: dt.date

    def at(self, days: int, hour: int = 12, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(
            self.day0 + dt.timedelta(days=days), dt.time(hour, minute), tzinfo=dt.UTC
        )

    def day(self, days: int) -> dt.date:
        return self.day0 + dt.timedelta(days=days)


async def seed(client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock) -> Fleet:
    """Licence A pings from two machines and two networks on day 0 and once on day 1;
    licence B once on day 0."""
    fleet = Fleet(
        await create_licence(client, app, max_machines=5),
        await create_licence(client, app),
        clock.now().date(),
    )
    clock.current = fleet.at(0, 9)
    await ping(app, fleet.a["key"], "pc-1", address=NETWORK_A, user_count=5, version="8.2.1")
    clock.current = fleet.at(0, 10)
    await ping(app, fleet.a["key"], "pc-2", address=NETWORK_B, user_count=9, version="8.10.0")
    clock.current = fleet.at(0, 23, 59)
    await ping(app, fleet.a["key"], "pc-1", address=NETWORK_A_AGAIN, user_count=7, version="8.2.1")
    await ping(app, fleet.b["key"], "pc-9", address=NETWORK_B, user_count=1)
    clock.current = fleet.at(1, 0, 1)
    await ping(app, fleet.a["key"], "pc-1", address=NETWORK_A, user_count=6, version="8.10.0")
    return fleet


async def maintain(app: FastAPI, clock: FrozenClock, **settings: Any) -> MaintenanceReport:
    report = await run_maintenance(
        app_parts.database(app), app_parts.settings(app).model_copy(update=settings), clock.now()
    )
    assert report.ran
    return report


async def rows(app: FastAPI, query: Any) -> list[Any]:
    async with app_parts.database(app).sessions() as session:
        return list(await session.execute(query))


async def rollups(app: FastAPI) -> list[tuple[str, dt.date, int, int, int, int, list[str]]]:
    found = await rows(app, select(DailyUsage).order_by(DailyUsage.day, DailyUsage.licence_id))
    return [
        (str(r.licence_id), r.day, r.pings, r.machines, r.networks, r.peak_users, r.versions)
        for (r,) in found
    ]


async def ping_days(app: FastAPI) -> list[dt.date]:
    found = await rows(app, select(pings.c.received_at).order_by(pings.c.received_at))
    return [received_at.date() for (received_at,) in found]


async def partition_exists(app: FastAPI, day: dt.date) -> bool:
    async with app_parts.database(app).engine.connect() as connection:
        name = partition_name(day)
        return await connection.scalar(text("SELECT to_regclass(:n)"), {"n": name}) is not None


def expected_rollups(fleet: Fleet) -> list[tuple[str, dt.date, int, int, int, int, list[str]]]:
    day0 = [
        (fleet.a["id"], fleet.day0, 3, 2, 2, 9, ["8.2.1", "8.10.0"]),
        (fleet.b["id"], fleet.day0, 1, 1, 1, 1, ["8.2.1"]),
    ]
    return [*sorted(day0), (fleet.a["id"], fleet.day(1), 1, 1, 1, 6, ["8.10.0"])]


async def test_pings_roll_up_expire_and_machines_and_rollups_follow(
    store: Store, client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    fleet = await seed(client, app, clock)
    first_ping = select(pings.c.licence_id, pings.c.net_id).order_by(pings.c.received_at)
    licence_of_day0, net_id_of_day0 = (await rows(app, first_ping.limit(1)))[0]

    # Two days on: day 0 and day 1 have ended, and day 0's key is 48 hours old.
    clock.current = fleet.at(2, 0, 30)
    report = await maintain(app, clock)
    assert report.days_rolled_up == 2 and report.day_keys_destroyed >= 1
    assert await rollups(app) == expected_rollups(fleet)
    assert [day for (day,) in await rows(app, select(DayKey.day))] == [fleet.day(1)]
    # A key made anew for day 0 is another random key: day 0's net_ids link to nothing.
    async with app_parts.database(app).sessions() as session, session.begin():
        ring = DayKeyRing(app_parts.pseudonyms(app).day_key_wrapping)
        new_key = await ring.load(session, fleet.at(0))
    assert net_id(new_key, licence_of_day0, NETWORK_A) != net_id_of_day0
    assert len(await ping_days(app)) == 5  # nothing expired yet

    # Forty-one days on: day 0's pings have passed the 40-day retention; its rollup stays.
    clock.current = fleet.at(41)
    report = await maintain(app, clock)
    assert await ping_days(app) == [fleet.day(1)]
    assert await rollups(app) == expected_rollups(fleet)
    if store.kind == "postgresql":
        assert report.partitions_dropped >= 1 and report.pings_expired == 0
        assert not await partition_exists(app, fleet.day0)
        assert await partition_exists(app, fleet.day(1))
        assert await partition_exists(app, fleet.day(44))  # created ahead meanwhile
    else:
        assert report.pings_expired == 4

    # Unseen for 400 days: pc-2 and B's machine (last seen on day 0) go, pc-1 (day 1) stays.
    clock.current = fleet.at(401, 0)
    report = await maintain(app, clock)
    assert report.machines_expired == 2
    machines = await rows(app, select(Machine.machine_id))
    assert machines == [(app_parts.pseudonyms(app).machine_id(uuid.UUID(fleet.a["id"]), pc1()),)]
    assert await ping_days(app) == []

    # Six years on: day 0's rollups have passed theirs, day 1's has not.
    clock.current = fleet.at(2191)
    report = await maintain(app, clock)
    assert report.rollups_expired == 2
    assert await rollups(app) == expected_rollups(fleet)[2:]


def pc1() -> str:
    return computer_id("pc-1")


async def test_usage_reads_rollups_and_counts_the_rest_live(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    fleet = await seed(client, app, clock)
    licence_id = uuid.UUID(fleet.a["id"])

    async def usage(since: dt.date, until: dt.date) -> list[DayUsage]:
        async with app_parts.database(app).sessions() as session:
            return await daily_usage(session, licence_id, since=since, until=until)

    live = await usage(fleet.day0, fleet.day(1))
    clock.current = fleet.at(1, 23)
    await maintain(app, clock)  # rolls up day 0 only: day 1 has not ended
    assert sorted(pings for (pings,) in await rows(app, select(DailyUsage.pings))) == [1, 3]
    assert await usage(fleet.day0, fleet.day(1)) == live
    assert [(u.day, u.pings, u.machines, u.networks, u.peak_users, u.versions) for u in live] == [
        (fleet.day0, 3, 2, 2, 9, ["8.2.1", "8.10.0"]),
        (fleet.day(1), 1, 1, 1, 6, ["8.10.0"]),
    ]
    assert await usage(fleet.day(1), fleet.day(1)) == live[1:]
    assert await usage(fleet.day(2), fleet.day(9)) == []

    # Once day 0's pings are gone, its figures still come from the rollup.
    clock.current = fleet.at(42)
    await maintain(app, clock)
    assert await ping_days(app) == []
    assert await usage(fleet.day0, fleet.day(42)) == live


async def test_a_day_ends_for_the_rollup_only_after_its_last_batches(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    fleet = await seed(client, app, clock)
    clock.current = fleet.at(1, 0, 5)  # day 0 ended five minutes ago
    assert (await maintain(app, clock)).days_rolled_up == 0
    clock.current = fleet.at(1, 0, 15)
    assert (await maintain(app, clock)).days_rolled_up == 1
    again = await maintain(app, clock)
    assert again.days_rolled_up == 0 and len(await rollups(app)) == 2


async def test_pings_never_expire_before_their_day_is_rolled_up(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    """A server that was down longer than the retention rolls the days up first."""
    fleet = await seed(client, app, clock)
    clock.current = fleet.at(3)
    report = await maintain(app, clock, ping_retention_days=1)
    assert report.days_rolled_up == 3
    assert await rollups(app) == expected_rollups(fleet)
    assert await ping_days(app) == []


async def test_sqlite_expires_in_bounded_batches(
    store: Store,
    client: httpx.AsyncClient,
    app: FastAPI,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if store.kind != "sqlite":
        pytest.skip("PostgreSQL drops partitions instead")
    fleet = await seed(client, app, clock)
    monkeypatch.setattr(retention, "SQLITE_DELETE_BATCH", 2)
    deletes: list[str] = []

    def count_deletes(*args: Any) -> None:
        if args[2].startswith("DELETE FROM pings"):
            deletes.append(args[2])

    engine = app_parts.database(app).engine.sync_engine
    event.listen(engine, "before_cursor_execute", count_deletes)
    clock.current = fleet.at(42)
    report = await maintain(app, clock)
    event.remove(engine, "before_cursor_execute", count_deletes)
    assert report.pings_expired == 5
    assert len(deletes) == 3  # 2 + 2 + 1, each in a transaction of its own
    assert await ping_days(app) == []


async def _end_state(app: FastAPI) -> tuple[Any, ...]:
    machines = await rows(app, select(func.count()).select_from(Machine))
    keys = await rows(app, select(DayKey.day).order_by(DayKey.day))
    return (await rollups(app), await ping_days(app), machines, keys)


async def test_an_interrupted_run_is_finished_by_the_next(
    store: Store,
    client: httpx.AsyncClient,
    app: FastAPI,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cancelled right after its first expiry statement, a run leaves a state the next
    run completes: no rollup is lost or made from a half-expired day."""
    fleet = await seed(client, app, clock)
    clock.current = fleet.at(2)
    await ping(app, fleet.b["key"], "pc-9", address=NETWORK_B, user_count=2)
    clock.current = fleet.at(42)
    monkeypatch.setattr(retention, "SQLITE_DELETE_BATCH", 2)
    database = app_parts.database(app)
    run = asyncio.create_task(run_maintenance(database, app_parts.settings(app), clock.now()))
    expiry = ("DELETE FROM pings", "ALTER TABLE pings DETACH")

    def interrupt(*args: Any) -> None:
        if args[2].startswith(expiry):
            run.cancel()

    event.listen(database.engine.sync_engine, "after_cursor_execute", interrupt)
    with pytest.raises(asyncio.CancelledError):
        await run
    event.remove(database.engine.sync_engine, "after_cursor_execute", interrupt)
    assert await rollups(app) == sorted(
        [*expected_rollups(fleet), (fleet.b["id"], fleet.day(2), 1, 1, 1, 2, ["8.2.1"])],
        key=lambda row: (row[1], row[0]),
    )

    await maintain(app, clock)
    finished = await _end_state(app)
    assert finished[1] == [fleet.day(2)]  # day 2 is within the 40 days
    await maintain(app, clock)
    assert await _end_state(app) == finished


async def test_a_run_that_fails_on_a_lock_is_finished_by_the_next(
    store: Store, client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    """Another connection holds what expiry needs: the run fails, the rollups it made
    stay, nothing expires; once the lock is gone, the next run expires the day."""
    fleet = await seed(client, app, clock)
    clock.current = fleet.at(42)
    # SQLite waits for its lock as long as the store timeout; PostgreSQL as long as
    # the partition lock timeout of the expiry step.
    shorter = {"store_timeout_s": 0.5} if store.kind == "sqlite" else {}
    impatient = Database(store.settings.model_copy(update=shorter))
    blocker = Database(store.settings)
    try:
        async with blocker.engine.connect() as holder:
            await holder.begin()
            if store.kind == "postgresql":
                await holder.execute(
                    text(f"LOCK TABLE {partition_name(fleet.day0)} IN ACCESS SHARE MODE")
                )
            else:
                # SQLite's one write lock: every step needs it.
                await holder.execute(text("SELECT 1"))
            with pytest.raises(DBAPIError):
                await run_maintenance(impatient, store.settings, clock.now())
            await holder.rollback()
        assert len(await ping_days(app)) == 5
        report = await run_maintenance(impatient, store.settings, clock.now())
    finally:
        await impatient.dispose()
        await blocker.dispose()
    assert report.ran
    assert await ping_days(app) == []
    assert await rollups(app) == expected_rollups(fleet)
