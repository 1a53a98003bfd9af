"""Apply the Alembic migrations from code: `callhome db upgrade` and the embedded default."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.settings import Settings

# Beside the app package in a source tree; an installed wheel (the container
# image) names the folder it copied them to.
MIGRATIONS_DIR = Path(
    os.environ.get("CALLHOME_MIGRATIONS_DIR") or Path(__file__).resolve().parents[2] / "migrations"
)


@contextmanager
def one_transaction_keeping_references(connection: Connection) -> Iterator[None]:
    """Run the migrations inside one transaction that no table rebuild can cascade from.

    SQLite changes a table by rebuilding it (Alembic's batch mode), which drops the old
    table; with foreign keys on, that drop deletes every row referring to it through
    ON DELETE CASCADE: all machines, with the licences table. So on SQLite the keys are
    off while the migrations run (a pragma that only takes effect outside a transaction)
    and every reference is checked before the transaction commits."""
    if connection.dialect.name != "sqlite":
        yield
        return
    if connection.in_transaction():
        raise RuntimeError("SQLite migrations need a connection outside any transaction")
    _sqlite_pragma(connection, "foreign_keys = OFF")
    try:
        with connection.begin():
            yield
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"migration left rows referring to nothing: {broken[:5]}")
    finally:
        _sqlite_pragma(connection, "foreign_keys = ON")


def _sqlite_pragma(connection: Connection, pragma: str) -> None:
    # Past SQLAlchemy, whose first statement would begin a transaction.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _config(connection: Connection, settings: Settings | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    # The running server's settings, for a migration that needs a key kept outside the
    # store (sealing secrets); without them, a migration reads the environment's.
    config.attributes["settings"] = settings
    return config


async def upgrade(
    engine: AsyncEngine, revision: str = "head", *, settings: Settings | None = None
) -> None:
    async with engine.connect() as connection:
        await connection.run_sync(lambda sync: command.upgrade(_config(sync, settings), revision))


async def downgrade(
    engine: AsyncEngine, revision: str, *, settings: Settings | None = None
) -> None:
    async with engine.connect() as connection:
        await connection.run_sync(lambda sync: command.downgrade(_config(sync, settings), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
