"""What every `callhome` command shares: one committed transaction, JSON or human output."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import migrations
from app.core.clock import SystemClock
from app.core.database import Database
from app.core.errors import CallhomeError
from app.core.json import dumps
from app.core.settings import Settings

T = TypeVar("T")
# What the audit log records for changes made from the command line.
CLI_ACTOR = "cli"

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def now() -> dt.datetime:
    return SystemClock().now()


def require_store(settings: Settings) -> None:
    """Refuse to work on an embedded store that does not exist yet.

    Only `callhome init` and `callhome serve` create one: a command run from another
    directory must not quietly start a second, empty store in its ./var.
    """
    if settings.is_embedded and not settings.embedded_store.exists():
        typer.echo(
            f"error: no callhome store at {settings.embedded_store.absolute()}. "
            "Set CALLHOME_DATA_DIR to the directory of the store in use (relative paths "
            "start from the current directory), or create one here with `callhome init`.",
            err=True,
        )
        raise typer.Exit(1)


def in_session(
    work: Callable[[AsyncSession, Settings], Awaitable[T]], *, create_store: bool = False
) -> T:
    """Run `work` in one committed transaction, as the per-request session does.

    The embedded store must exist unless `create_store` (for `callhome init`)."""
    settings = Settings()
    if not create_store:
        require_store(settings)

    async def run() -> T:
        database = Database(settings)
        try:
            if settings.is_embedded:
                await migrations.upgrade(database.engine, settings=settings)
            async with database.sessions() as session, session.begin():
                return await work(session, settings)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except CallhomeError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from error


def emit(as_json: bool, document: dict[str, Any], human: str) -> None:
    typer.echo(dumps(document).decode() if as_json else human)


def parse(model: type[BaseModel], **fields: Any) -> Any:
    """Validate command-line input with the API's own wire model."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as error:
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            typer.echo(f"error: {where}: {problem['msg']}", err=True)
        raise typer.Exit(2) from error


def emit_page(
    as_json: bool,
    items: list[dict[str, Any]],
    lines: list[str],
    next_cursor: str | None,
    *,
    empty: str,
) -> None:
    """One page of a list: its items and cursor as JSON, or a line each and how to go on."""
    human = "\n".join(lines) or empty
    if next_cursor:
        human += f"\nmore: --cursor {next_cursor}"
    emit(as_json, {"items": items, "next_cursor": next_cursor}, human)
