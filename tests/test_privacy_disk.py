"""What an auditor with the server's disk finds: owner-only files, ping times to the minute."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.core.settings import Settings
from app.ingest.models import pings
from app.main import create_app
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import ping


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_embedded_data_directory_is_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    # As an older server left it: a world-readable directory and database.
    data_dir.mkdir(mode=0o755)
    (data_dir / "callhome.sqlite3").touch(mode=0o644)
    data_dir.chmod(0o755)
    (data_dir / "callhome.sqlite3").chmod(0o644)
    app = create_app(Settings(data_dir=data_dir))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
            licence = await create_licence(http, app)
            await ping(app, licence["key"], "pc-1")
        files = {path.name: mode(path) for path in data_dir.iterdir()}
    assert mode(data_dir) == 0o700
    assert {"callhome.sqlite3", "callhome.sqlite3-wal", "callhome.sqlite3-shm"} <= set(files)
    assert {"pseudonym.key", "signing-key.pem"} <= set(files)
    assert files == dict.fromkeys(files, 0o600)


async def test_a_new_embedded_store_is_created_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "var"
    app = create_app(Settings(data_dir=data_dir))
    async with app.router.lifespan_context(app):
        assert mode(data_dir) == 0o700
        assert mode(data_dir / "callhome.sqlite3") == 0o600


async def test_pings_are_kept_to_the_minute(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    clock.current = dt.datetime(2026, 12, 1, 12, 34, 56, 789_012, tzinfo=dt.UTC)
    licence = await create_licence(client, app)
    await ping(app, licence["key"], "pc-1")
    async with app_parts.database(app).sessions() as session:
        received_at = await session.scalar(select(pings.c.received_at))
    assert received_at == dt.datetime(2026, 12, 1, 12, 34, tzinfo=dt.UTC)
