"""`callhome serve`, `callhome db` and `callhome keys`: running the app, its store and its key."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.core import migrations
from app.core.commands import JsonFlag, emit, now
from app.core.database import Database
from app.core.settings import Settings
from app.core.signing import load_signer
from app.ingest.repository import ensure_ping_partitions

db_app = typer.Typer(help="Database migrations.")
keys_app = typer.Typer(help="The verdict-signing key.")


def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve the API (the embedded default migrates its SQLite file first)."""
    import uvicorn

    from app.core.logging import configure_logging, logging_config

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.is_embedded:
        asyncio.run(_upgrade(settings))
    workers = workers or settings.workers
    if workers > 1 and settings.metrics_enabled:
        from app.core.metrics import prepare_multiprocess_dir

        # Each worker counts its own; /metrics, on whichever answers, sums them.
        prepare_multiprocess_dir(settings.data_dir)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=logging_config(settings.log_level, settings.log_format),
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=30,
    )


async def _upgrade(settings: Settings, revision: str = "head") -> None:
    database = Database(settings)
    try:
        await migrations.upgrade(database.engine, revision, settings=settings)
        async with database.engine.begin() as connection:
            await ensure_ping_partitions(connection, now().date())
    finally:
        await database.dispose()


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (and create the coming days' ping partitions on PostgreSQL)."""
    asyncio.run(_upgrade(Settings(), revision))
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Roll migrations back to REVISION ("base" removes every table)."""

    async def run() -> None:
        settings = Settings()
        database = Database(settings)
        try:
            await migrations.downgrade(database.engine, revision, settings=settings)
        finally:
            await database.dispose()

    asyncio.run(run())
    typer.echo(f"database at {revision}")


@keys_app.command("show")
def keys_show(as_json: JsonFlag = False) -> None:
    """Print the public key that SDKs pin, and its id."""
    signer = load_signer(Settings())
    document = {"keyid": signer.key_id, "algorithm": "ed25519", "public_key": signer.public_key_b64}
    emit(as_json, document, f"keyid {signer.key_id}\npublic key {signer.public_key_b64}")
