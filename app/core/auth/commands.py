"""`callhome tokens`: staff tokens for the admin API and the staff page."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import auth
from app.core.commands import JsonFlag, emit, in_session, now
from app.core.settings import Settings

tokens_app = typer.Typer(help="Staff tokens for the admin API.")


@tokens_app.command("create")
def tokens_create(
    scope: Annotated[list[auth.Scope], typer.Option(help="A scope the token holds.")],
    name: Annotated[str, typer.Option(help="Who holds it; the audit log shows this.")] = "staff",
    expires_days: Annotated[int | None, typer.Option(min=1, help="Days until it expires.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a staff token; it is printed this once."""
    if not 1 <= len(name) <= 64:
        typer.echo("error: --name takes 1 to 64 characters", err=True)
        raise typer.Exit(2)

    async def work(session: AsyncSession, _: Settings) -> auth.IssuedToken:
        issued_at = now()
        expires_at = issued_at + dt.timedelta(days=expires_days) if expires_days else None
        return await auth.create_token(
            session, name=name, scopes=scope, now=issued_at, expires_at=expires_at
        )

    issued = in_session(work)
    document = _token_document(issued.token) | {"token": issued.secret}
    emit(
        as_json,
        document,
        f"{issued.token.id}  {name}  {' '.join(issued.token.scopes)}\ntoken: {issued.secret}",
    )


def _token_document(token: auth.StaffToken) -> dict[str, Any]:
    return {
        "id": str(token.id),
        "name": token.name,
        "scopes": token.scopes,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


@tokens_app.command("list")
def tokens_list(as_json: JsonFlag = False) -> None:
    """List staff tokens (never their secrets)."""
    tokens = in_session(lambda session, _: auth.list_tokens(session))
    document = {"items": [_token_document(token) for token in tokens]}
    human = "\n".join(
        f"{t.id}  {t.name:<16} {' '.join(t.scopes)}{'  revoked' if t.revoked_at else ''}"
        for t in tokens
    )
    emit(as_json, document, human or "no tokens")


@tokens_app.command("revoke")
def tokens_revoke(token_id: uuid.UUID, as_json: JsonFlag = False) -> None:
    """Revoke a staff token at once."""
    token = in_session(lambda session, _: auth.revoke_token(session, token_id, now()))
    emit(as_json, _token_document(token), f"revoked {token.id}")
