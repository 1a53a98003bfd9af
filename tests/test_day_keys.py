"""Day keys against an auditor with the store's files: kept only sealed, gone from disk
once destroyed, and net_ids that link no two licences."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.core.models import DayKey
from app.core.pseudonyms import net_id
from app.ingest.models import pings
from app.privacy.maintenance import run_maintenance
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import ping
from tests.support.rawfiles import store_bytes
from tests.support.stores import Store

ADDRESS = "203.0.113.7"


async def sealed_keys(app: FastAPI) -> dict[dt.date, bytes]:
    async with app_parts.database(app).sessions() as session:
        rows = await session.execute(select(DayKey.day, DayKey.sealed_key))
        return {day: sealed for day, sealed in rows}


async def test_the_store_holds_no_day_key_in_the_clear(
    store: Store, client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app)
    await ping(app, licence["key"], "pc-1", address=ADDRESS)
    [(day, sealed)] = (await sealed_keys(app)).items()
    day_key = app_parts.pseudonyms(app).day_key_wrapping.open(day, sealed)
    async with app_parts.database(app).sessions() as session:
        stored_net_id = await session.scalar(select(pings.c.net_id))
    # The key reverses the stored net_id, so it must be the key; and no file holds it.
    assert net_id(day_key, uuid.UUID(licence["id"]), ADDRESS) == stored_net_id
    assert day_key not in await store_bytes(store, app, ["day_keys"])


async def test_a_destroyed_day_key_leaves_the_store_files(
    store: Store, client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    clock.current = clock.current.replace(hour=12, minute=0)
    licence = await create_licence(client, app)
    await ping(app, licence["key"], "pc-1", address=ADDRESS)
    [(first_day, sealed)] = (await sealed_keys(app)).items()
    clock.advance(days=1)
    await ping(app, licence["key"], "pc-1", address=ADDRESS)
    assert sealed in await store_bytes(store, app, ["day_keys"])

    clock.current = dt.datetime.combine(
        first_day + dt.timedelta(days=2), dt.time(0, 0), tzinfo=dt.UTC
    )
    report = await run_maintenance(app_parts.database(app), app_parts.settings(app), clock.now())
    assert report.day_keys_destroyed == 1
    assert list(await sealed_keys(app)) == [first_day + dt.timedelta(days=1)]
    assert sealed not in await store_bytes(store, app, ["day_keys"])


async def test_net_ids_are_scoped_to_the_licence(client: httpx.AsyncClient, app: FastAPI) -> None:
    first = await create_licence(client, app)
    second = await create_licence(client, app)
    await ping(app, first["key"], "pc-1", address=ADDRESS)
    await ping(app, first["key"], "pc-2", address="203.0.113.99")
    await ping(app, second["key"], "pc-1", address=ADDRESS)
    async with app_parts.database(app).sessions() as session:
        rows = (await session.execute(select(pings.c.licence_id, pings.c.net_id))).all()
    by_licence: dict[str, set[str]] = {}
    for licence_id, network in rows:
        by_licence.setdefault(str(licence_id), set()).add(network)
    # One /24 is one network within a licence, and another one for the next licence.
    assert len(by_licence[first["id"]]) == 1 and len(by_licence[second["id"]]) == 1
    assert by_licence[first["id"]].isdisjoint(by_licence[second["id"]])
