"""Apply the Alembic migrations from code: `callhome db upgrade` and the embedded default."""

from __future__ import annotations

import os
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
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(_config(sync, settings), revision))


async def downgrade(
    engine: AsyncEngine, revision: str, *, settings: Settings | None = None
) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(_config(sync, settings), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
