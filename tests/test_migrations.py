"""Migrations build the schema from nothing and take it down again, on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from app.core import migrations
from app.core.database import create_engine
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


async def test_sqlite_upgrade_and_downgrade(tmp_path: Path) -> None:
    await upgrade_then_downgrade(f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")


async def test_postgresql_upgrade_and_downgrade() -> None:
    url = stores.postgresql_url()
    if url is None:
        if stores.running_in_ci():
            pytest.fail(f"{stores.PG_ENV} is not set: CI must test PostgreSQL")
        pytest.skip(f"PostgreSQL tests need {stores.PG_ENV}")
    empty = stores.PostgresTemplates(url)
    name = f"{empty.prefix}_empty"
    connection = await empty._admin()
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    database_url = url.rpartition("/")[0] + "/" + name
    try:
        await upgrade_then_downgrade(database_url)
    finally:
        await empty.drop(database_url)
