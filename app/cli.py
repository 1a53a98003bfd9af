"""The `callhome` command: serve, migrate, and everything the staff API does."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable
from dataclasses import asdict
from typing import Annotated, Any

import typer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.abuse.commands import detect, machines_app, reports_app
from app.abuse.models import AbuseReport, ReportStatus
from app.audit.commands import audit
from app.core import auth, migrations
from app.core.commands import CLI_ACTOR, JsonFlag, emit, in_session, now, parse
from app.core.database import Database
from app.core.pseudonyms import Pseudonyms
from app.core.secrets import pseudonym_key
from app.core.settings import Settings
from app.core.signing import load_signer
from app.ingest.models import pings
from app.licences import service as licences
from app.licences.models import Licence, LicenceStatus, Machine, Overage
from app.licences.schemas import LicenceChange, LicenceCreate, LicenceOut
from app.privacy.commands import privacy_app
from app.releases.commands import feeds_app, releases_app

app = typer.Typer(help="callhome: a licence call-home server that keeps no personal data.")
db_app = typer.Typer(help="Database migrations.")
licences_app = typer.Typer(help="Licence administration.")
tokens_app = typer.Typer(help="Staff tokens for the admin API.")
keys_app = typer.Typer(help="The verdict-signing key.")
app.add_typer(db_app, name="db")
app.add_typer(licences_app, name="licences")
app.add_typer(tokens_app, name="tokens")
app.add_typer(keys_app, name="keys")
app.add_typer(releases_app, name="releases")
app.add_typer(feeds_app, name="feeds")
app.add_typer(reports_app, name="reports")
app.add_typer(machines_app, name="machines")
app.add_typer(privacy_app, name="privacy")
app.command("detect")(detect)
app.command("audit")(audit)


def licence_document(licence: Licence) -> dict[str, Any]:
    return LicenceOut.model_validate(licence).model_dump(mode="json")


def licence_summary(licence: Licence) -> str:
    expires = licence.expires_at.date().isoformat() if licence.expires_at else "never"
    return (
        f"{licence.id}  {licence.product:<16} ...{licence.key_last4}  {licence.status:<9} "
        f"machines {licence.max_machines}  expires {expires}"
    )


# -- serving and the schema ------------------------------------------------


@app.command()
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
        await migrations.upgrade(database.engine, revision)
        from app.ingest.repository import ensure_ping_partitions

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
        database = Database(Settings())
        try:
            await migrations.downgrade(database.engine, revision)
        finally:
            await database.dispose()

    asyncio.run(run())
    typer.echo(f"database at {revision}")


# -- licences ---------------------------------------------------------------


@licences_app.command("create")
def licences_create(
    product: Annotated[str, typer.Option(help="Product name, [a-z0-9-]{1,32}.")],
    key: Annotated[str | None, typer.Option(help="Use this key instead of generating one.")] = None,
    max_machines: Annotated[int, typer.Option(help="Machines in use at once.")] = 1,
    max_users: Annotated[int | None, typer.Option(help="Users allowed (none: no limit).")] = None,
    expires: Annotated[str | None, typer.Option(help="YYYY-MM-DD, expired from then.")] = None,
    updates_until: Annotated[str | None, typer.Option(help="YYYY-MM-DD, maintenance end.")] = None,
    entitlement: Annotated[list[str] | None, typer.Option(help="Feed entitled to.")] = None,
    overage: Annotated[Overage, typer.Option(help="Over the machine limit.")] = Overage.REPORT,
    activity_window_days: Annotated[int | None, typer.Option(help="Days a machine counts.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a licence; its key is printed this once."""
    data = parse(
        LicenceCreate,
        product=product,
        key=key,
        max_machines=max_machines,
        max_users=max_users,
        expires_at=expires,
        updates_until=updates_until,
        entitlements=entitlement or [],
        overage=overage,
        activity_window_days=activity_window_days,
    )

    async def work(session: AsyncSession, settings: Settings) -> licences.NewLicence:
        return await licences.create_licence(
            session,
            Pseudonyms(pseudonym_key(settings)),
            data,
            default_window_days=settings.activity_window_days,
            actor=CLI_ACTOR,
            now=now(),
        )

    created = in_session(work)
    document = {**licence_document(created.licence), "key": created.key}
    emit(as_json, document, f"{licence_summary(created.licence)}\nkey: {created.key}")


@licences_app.command("list")
def licences_list(
    product: str | None = None,
    status: LicenceStatus | None = None,
    limit: int = 50,
    cursor: str | None = None,
    as_json: JsonFlag = False,
) -> None:
    """List licences, newest first."""

    async def work(session: AsyncSession, _: Settings) -> tuple[list[Licence], str | None]:
        wanted = licences.LicenceFilter(product=product, status=status)
        return await licences.list_licences(session, wanted, cursor=cursor, limit=limit)

    rows, next_cursor = in_session(work)
    document = {"items": [licence_document(row) for row in rows], "next_cursor": next_cursor}
    human = "\n".join(licence_summary(row) for row in rows) or "no licences"
    if next_cursor:
        human += f"\nmore: --cursor {next_cursor}"
    emit(as_json, document, human)


def _licence_by_id_or_key(
    session: AsyncSession, settings: Settings, ref: str
) -> Awaitable[Licence]:
    try:
        return licences.get_licence(session, uuid.UUID(ref))
    except ValueError:
        return licences.find_by_key(session, Pseudonyms(pseudonym_key(settings)), ref)


@licences_app.command("show")
def licences_show(
    licence: Annotated[str, typer.Argument(help="Licence id, or the licence key itself.")],
    as_json: JsonFlag = False,
) -> None:
    """Show one licence."""

    async def work(session: AsyncSession, settings: Settings) -> Licence:
        return await _licence_by_id_or_key(session, settings, licence)

    found = in_session(work)
    emit(as_json, licence_document(found), licence_summary(found))


def _change(ref: str, change: LicenceChange, as_json: bool) -> None:
    async def work(session: AsyncSession, settings: Settings) -> Licence:
        found = await _licence_by_id_or_key(session, settings, ref)
        return await licences.change_licence(session, found.id, change, actor=CLI_ACTOR, now=now())

    changed = in_session(work)
    emit(as_json, licence_document(changed), licence_summary(changed))


LicenceRef = Annotated[str, typer.Argument(help="Licence id, or the licence key itself.")]


@licences_app.command("revoke")
def licences_revoke(licence: LicenceRef, as_json: JsonFlag = False) -> None:
    """Revoke a licence for good."""
    _change(licence, LicenceChange(status=LicenceStatus.REVOKED), as_json)


@licences_app.command("suspend")
def licences_suspend(licence: LicenceRef, as_json: JsonFlag = False) -> None:
    """Suspend a licence until it is reinstated."""
    _change(licence, LicenceChange(status=LicenceStatus.SUSPENDED), as_json)


@licences_app.command("reinstate")
def licences_reinstate(licence: LicenceRef, as_json: JsonFlag = False) -> None:
    """Make a suspended licence active again."""
    _change(licence, LicenceChange(status=LicenceStatus.ACTIVE), as_json)


@licences_app.command("extend")
def licences_extend(
    licence: LicenceRef,
    expires: Annotated[str | None, typer.Option(help="New expiry, YYYY-MM-DD.")] = None,
    updates_until: Annotated[str | None, typer.Option(help="New maintenance end.")] = None,
    max_machines: int | None = None,
    max_users: int | None = None,
    as_json: JsonFlag = False,
) -> None:
    """Extend a licence's dates or limits."""
    change = parse(
        LicenceChange,
        expires_at=expires,
        updates_until=updates_until,
        max_machines=max_machines,
        max_users=max_users,
    )
    _change(licence, change, as_json)


# -- staff tokens -------------------------------------------------------------


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


# -- keys, stats, first run ---------------------------------------------------------


@keys_app.command("show")
def keys_show(as_json: JsonFlag = False) -> None:
    """Print the public key that SDKs pin, and its id."""
    signer = load_signer(Settings())
    document = {"keyid": signer.key_id, "algorithm": "ed25519", "public_key": signer.public_key_b64}
    emit(as_json, document, f"keyid {signer.key_id}\npublic key {signer.public_key_b64}")


async def _counts(session: AsyncSession) -> dict[str, int]:
    async def count(table: Any) -> int:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)

    open_reports = select(AbuseReport).where(AbuseReport.status == ReportStatus.OPEN.value)
    return {
        "licences": await count(Licence),
        "machines": await count(Machine),
        "pings": await count(pings),
        "open_reports": await count(open_reports.subquery()),
    }


@app.command()
def stats(as_json: JsonFlag = False) -> None:
    """Counts of what the store holds."""
    counts = in_session(lambda session, _: _counts(session))
    emit(as_json, counts, "\n".join(f"{name:<14} {value}" for name, value in counts.items()))


@app.command()
def maintain(as_json: JsonFlag = False) -> None:
    """Run the maintenance steps once (for cron; servers also run them hourly)."""
    from app.privacy.maintenance import MaintenanceReport, run_maintenance

    async def run() -> MaintenanceReport:
        settings = Settings()
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


@app.command()
def init(as_json: JsonFlag = False) -> None:
    """On an empty store, create a demo licence and an all-scopes staff token, and print them."""

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any] | None:
        if await session.scalar(select(func.count()).select_from(Licence)):
            return None
        created = await licences.create_licence(
            session,
            Pseudonyms(pseudonym_key(settings)),
            LicenceCreate(product="demo-mail", max_machines=3, entitlements=["spam"]),
            default_window_days=settings.activity_window_days,
            actor=CLI_ACTOR,
            now=now(),
        )
        issued = await auth.create_token(
            session, name="demo-admin", scopes=list(auth.Scope), now=now()
        )
        return {
            "licence_id": str(created.licence.id),
            "licence_key": created.key,
            "staff_token": issued.secret,
        }

    made = in_session(work)
    if made is None:
        emit(as_json, {}, "callhome: the store has licences already; nothing created")
        return
    emit(
        as_json,
        made,
        "callhome: first run, created for you (shown this once):\n"
        f"  demo licence key  {made['licence_key']}  (product demo-mail, 3 machines)\n"
        f"  staff token       {made['staff_token']}  (all scopes)",
    )


def main() -> None:
    app(prog_name="callhome")


if __name__ == "__main__":
    main()
