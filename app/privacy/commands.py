"""`callhome privacy`, `callhome maintain` and `callhome stats`: what is held, kept and erased."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import IO, Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.abuse import repository as abuse
from app.core.commands import CLI_ACTOR, JsonFlag, emit, in_session, now, require_store
from app.core.database import Database
from app.core.settings import Settings
from app.ingest import repository as ingest
from app.licences import repository as licences
from app.privacy import erasure, export, requests
from app.privacy.maintenance import MaintenanceReport, run_maintenance

privacy_app = typer.Typer(help="Privacy requests: export or erase what is held about a licence.")

LicenceId = Annotated[uuid.UUID, typer.Argument(help="The licence id.")]


@privacy_app.command("export")
def privacy_export(
    licence: LicenceId,
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Everything held about a licence, as one JSON document (audited)."""

    async def work(session: AsyncSession, _: Settings) -> IO[bytes]:
        return await export.export_licence(session, licence, actor=CLI_ACTOR, now=now())

    # Written out once the audit entry is committed.
    with in_session(work) as document:
        if output is None:
            shutil.copyfileobj(document, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            with output.open("wb") as file:
                shutil.copyfileobj(document, file)


async def _settle() -> None:
    database = Database(Settings())
    try:
        await erasure.settle(database)
    finally:
        await database.dispose()


@privacy_app.command("erase")
def privacy_erase(
    licence: LicenceId,
    delete_licence: Annotated[
        bool, typer.Option("--delete-licence", help="Delete the licence itself too.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Erase every row about a licence's use, in one transaction (audited, counts only)."""

    async def work(session: AsyncSession, _: Settings) -> erasure.Erasure:
        return await erasure.erase_licence_data(
            session, licence, delete_licence=delete_licence, actor=CLI_ACTOR, now=now()
        )

    _report_erasure(licence, in_session(work), as_json)


def _report_erasure(licence: uuid.UUID, erased: erasure.Erasure, as_json: bool) -> None:
    asyncio.run(_settle())
    document = {"licence_id": str(licence), **erased.document()}
    counts = ", ".join(f"{count} {table}" for table, count in erased.erased.items())
    deleted = "; the licence deleted" if erased.licence_deleted else "; the licence kept"
    emit(as_json, document, f"erased {counts}{deleted}")


@privacy_app.command("requests")
def privacy_requests(as_json: JsonFlag = False) -> None:
    """Erasure requests key holders made on the /my/ page, awaiting confirmation."""
    pending = in_session(lambda session, _: requests.pending(session))
    items = [
        {**asdict(request), "licence_id": str(request.licence_id),
         "requested_at": request.requested_at.isoformat()}
        for request in pending
    ]  # fmt: skip
    lines = [
        f"{request.licence_id}  {request.product:<16} ...{request.key_last4}  "
        f"asked {request.requested_at:%Y-%m-%d %H:%M} UTC"
        for request in pending
    ]
    emit(as_json, {"items": items}, "\n".join(lines) or "no erasure request is pending")


@privacy_app.command("confirm")
def privacy_confirm(
    licence: LicenceId,
    delete_licence: Annotated[
        bool, typer.Option("--delete-licence", help="Delete the licence itself too.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Confirm a key holder's erasure request: erase as `privacy erase` does (audited)."""

    async def work(session: AsyncSession, _: Settings) -> erasure.Erasure:
        return await requests.confirm(
            session, licence, delete_licence=delete_licence, actor=CLI_ACTOR, now=now()
        )

    _report_erasure(licence, in_session(work), as_json)


async def _counts(session: AsyncSession) -> dict[str, int]:
    return {
        "licences": await licences.count_licences(session),
        "machines": await licences.count_machines(session),
        "pings": await ingest.count_pings(session),
        "open_reports": await abuse.count_open_reports(session),
    }


def stats(as_json: JsonFlag = False) -> None:
    """Counts of what the store holds."""
    counts = in_session(lambda session, _: _counts(session))
    emit(as_json, counts, "\n".join(f"{name:<14} {value}" for name, value in counts.items()))


def maintain(as_json: JsonFlag = False) -> None:
    """Run the maintenance steps once (for cron; servers also run them hourly)."""
    settings = Settings()
    require_store(settings)

    async def run() -> MaintenanceReport:
        database = Database(settings)
        try:
            return await run_maintenance(database, settings, now())
        finally:
            await database.dispose()

    report = asyncio.run(run())
    human = (
        report.summary()
        if report.ran
        else "another process holds the maintenance lock; nothing done"
    )
    emit(as_json, asdict(report), human)
