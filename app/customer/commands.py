"""`callhome offline`: licence files for machines that can never call home."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.commands import CLI_ACTOR, in_session, now
from app.core.errors import PayloadTooLarge
from app.core.pseudonyms import Pseudonyms
from app.core.secrets import pseudonym_key
from app.core.settings import Settings
from app.core.signing import load_signer
from app.customer import offline

offline_app = typer.Typer(help="Offline activation: licence files for machines with no way out.")


@offline_app.command("issue")
def offline_issue(
    request: Annotated[
        Path, typer.Argument(help="The request file `callhome-client offline-request` wrote.")
    ],
    days: Annotated[
        int | None,
        typer.Option(min=1, max=3650, help="Days the file runs (never past the licence's expiry)."),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Seat the requesting machine and print its signed licence file (audited). Renewing
    is the same command."""
    body = request.read_bytes()[: offline.MAX_REQUEST_BYTES + 1]

    async def work(session: AsyncSession, settings: Settings) -> offline.LicenceFile:
        if len(body) > offline.MAX_REQUEST_BYTES:
            raise PayloadTooLarge(
                f"An activation request is at most {offline.MAX_REQUEST_BYTES} bytes"
            )
        return await offline.issue(
            session,
            offline.parse_request(body),
            days=days,
            default_days=settings.offline_licence_days,
            pseudonyms=Pseudonyms(pseudonym_key(settings)),
            signer=load_signer(settings),
            actor=CLI_ACTOR,
            now=now(),
        )

    issued = in_session(work)
    if output is None:
        sys.stdout.buffer.write(issued.body)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(issued.body)
    typer.echo(
        f"machine {issued.this_machine} activated until {issued.expires_at:%Y-%m-%d %H:%M} UTC",
        err=True,
    )
