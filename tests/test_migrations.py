"""Migrations build the schema from nothing and take it down again, on both stores."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import migrations
from app.core.database import create_engine
from app.licences import repository as licences_repository
from app.privacy.tables import metadata
from tests.support import stores


async def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names) - {"alembic_version"}


async def upgrade_then_downgrade(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
        assert await migrations.current_revision(engine) is not None
    finally:
        await engine.dispose()
    present = await table_names(url)
    assert {name for name in present if not name.startswith("pings_p")} == set(metadata.tables)
    engine = create_engine(url)
    try:
        await migrations.downgrade(engine, "base")
        assert await migrations.current_revision(engine) is None
    finally:
        await engine.dispose()
    assert await table_names(url) == set()


@asynccontextmanager
async def empty_postgresql_database() -> AsyncIterator[str]:
    url = stores.postgresql_url()
    if url is None:
        if stores.running_in_ci():
            pytest.fail(f"{stores.PG_ENV} is not set: CI must test PostgreSQL")
        pytest.skip(f"PostgreSQL tests need {stores.PG_ENV}")
    databases = stores.PostgresTemplates(url)
    database_url = await databases.create_empty(f"{databases.prefix}_empty")
    try:
        yield database_url
    finally:
        await databases.drop_now(database_url)


async def test_sqlite_upgrade_and_downgrade(tmp_path: Path) -> None:
    await upgrade_then_downgrade(f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")


async def test_postgresql_upgrade_and_downgrade() -> None:
    async with empty_postgresql_database() as database_url:
        await upgrade_then_downgrade(database_url)


BEFORE_LICENCE_KEYS = "0017_i15_pending_rewrites"
_licences_0017 = sa.table(
    "licences",
    *(sa.column(name, type_) for name, type_ in [
        ("id", sa.Uuid()), ("product", sa.String()), ("key_hash", sa.String()),
        ("key_last4", sa.String()), ("max_machines", sa.Integer()),
        ("entitlements", sa.JSON()), ("overage", sa.String()),
        ("activity_window_days", sa.Integer()), ("status", sa.String()),
        ("created_at", sa.DateTime(timezone=True)), ("updated_at", sa.DateTime(timezone=True)),
    ]),
)  # fmt: skip
_machines = sa.table(
    "machines",
    *(sa.column(name, type_) for name, type_ in [
        ("licence_id", sa.Uuid()), ("machine_id", sa.String()),
        ("first_seen_at", sa.DateTime(timezone=True)),
        ("last_seen_at", sa.DateTime(timezone=True)), ("last_version", sa.String()),
        ("last_user_count", sa.Integer()), ("seat", sa.String()),
    ]),
)  # fmt: skip


async def machines_of(engine: AsyncEngine, licence_id: uuid.UUID) -> int:
    async with engine.connect() as connection:
        query = sa.select(sa.func.count()).where(_machines.c.licence_id == licence_id)
        return int(await connection.scalar(query.select_from(_machines)) or 0)


async def licence_keys_move_keeping_every_row(url: str) -> None:
    """A licence and its machine stored before keys had a table of their own: the key
    still opens the licence afterwards, and going back down gives the key back, with no
    machine lost either way (a table rebuild on SQLite must not cascade)."""
    licence_id, key_hash = uuid.uuid4(), "ab" * 32
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine, BEFORE_LICENCE_KEYS)
        async with engine.begin() as connection:
            await connection.execute(
                _licences_0017.insert().values(
                    id=licence_id, product="mail", key_hash=key_hash, key_last4="WXYZ",
                    max_machines=2, entitlements=[], overage="report",
                    activity_window_days=7, status="active", created_at=now, updated_at=now,
                )
            )  # fmt: skip
            await connection.execute(
                _machines.insert().values(
                    licence_id=licence_id, machine_id="m" * 32, first_seen_at=now,
                    last_seen_at=now, last_version="8.1", last_user_count=3, seat="granted",
                )
            )  # fmt: skip

        await migrations.upgrade(engine)
        async with AsyncSession(engine) as session:
            found = await licences_repository.find_by_key_hash(session, key_hash)
        assert found is not None and found.id == licence_id
        assert await machines_of(engine, licence_id) == 1

        await migrations.downgrade(engine, BEFORE_LICENCE_KEYS)
        async with engine.connect() as connection:
            query = sa.select(_licences_0017.c.key_hash).where(_licences_0017.c.id == licence_id)
            assert await connection.scalar(query) == key_hash
        assert await machines_of(engine, licence_id) == 1
    finally:
        await engine.dispose()


async def test_sqlite_licence_keys_move_keeps_every_row(tmp_path: Path) -> None:
    await licence_keys_move_keeping_every_row(f"sqlite+aiosqlite:///{tmp_path / 'kept.sqlite3'}")


async def test_postgresql_licence_keys_move_keeps_every_row() -> None:
    async with empty_postgresql_database() as database_url:
        await licence_keys_move_keeping_every_row(database_url)
