"""`callhome audit`: the audit log, as the staff API shows it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service
from app.audit.schemas import AuditEntryOut
from app.core.commands import JsonFlag, emit_page, in_session

Moment = Annotated[
    dt.datetime | None,
    typer.Option(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"], help="UTC."),
]


def audit(
    actor: Annotated[str | None, typer.Option(help="Token name, or 'cli'.")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. machine.retire")] = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: Moment = None,
    until: Moment = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    cursor: str | None = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the audit log, newest first."""
    wanted = service.AuditFilter(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        since=since.replace(tzinfo=dt.UTC) if since else None,
        until=until.replace(tzinfo=dt.UTC) if until else None,
    )

    async def work(session: AsyncSession, _: object) -> tuple[list[AuditEntryOut], str | None]:
        entries, next_cursor = await service.list_entries(
            session, wanted, cursor=cursor, limit=limit
        )
        return [AuditEntryOut.model_validate(entry) for entry in entries], next_cursor

    entries, next_cursor = in_session(work)
    emit_page(
        as_json,
        [entry.model_dump(mode="json") for entry in entries],
        [
            f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<16} {e.action:<28} {e.target_type} {e.target_id}"
            for e in entries
        ],
        next_cursor,
        empty="no entries",
    )
