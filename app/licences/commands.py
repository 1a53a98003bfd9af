"""`callhome licences`, `callhome machines` and `callhome init`: the staff API's twins."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import auth
from app.core.commands import CLI_ACTOR, JsonFlag, emit, emit_page, in_session, now, parse
from app.core.pseudonyms import Pseudonyms
from app.core.secrets import pseudonym_key
from app.core.settings import Settings
from app.licences import repository
from app.licences import service as licences
from app.licences.models import EffectiveStatus, Licence, LicenceStatus, Overage
from app.licences.schemas import LicenceChange, LicenceCreate, LicenceOut, MachineOut

licences_app = typer.Typer(help="Licence administration.")
machines_app = typer.Typer(help="A licence's machines: list, retire.")


def licence_document(licence: Licence) -> dict[str, Any]:
    return LicenceOut.of(licence, now()).model_dump(mode="json")


def licence_summary(licence: Licence) -> str:
    expires = licence.expires_at.date().isoformat() if licence.expires_at else "never"
    if licence.expires_at is None and licence.trial_days is not None:
        expires = f"{licence.trial_days} days after its first seat"
    return (
        f"{licence.id}  {licence.product:<16} ...{licence.key_last4}  "
        f"{licence.status_at(now()):<9} "
        f"machines {licence.max_machines}  expires {expires}"
    )


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
    trial_days: Annotated[
        int | None, typer.Option(help="A trial: expires this many days after its first seat.")
    ] = None,
    grace_days: Annotated[
        int | None, typer.Option(help="Days the product may keep working after expiry.")
    ] = None,
    floating: Annotated[
        bool, typer.Option("--floating", help="Seats are leases that lapse unless renewed.")
    ] = False,
    lease_minutes: Annotated[
        int | None, typer.Option(help="A floating seat's lease (default 60).")
    ] = None,
    external_ref: Annotated[str | None, typer.Option(help="Your own reference (CRM).")] = None,
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
        trial_days=trial_days,
        grace_days=grace_days,
        floating=floating,
        lease_minutes=lease_minutes,
        external_ref=external_ref,
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
    status: Annotated[
        EffectiveStatus | None, typer.Option(help="expired: active, but past its expiry.")
    ] = None,
    external_ref: Annotated[str | None, typer.Option(help="Your own reference.")] = None,
    limit: int = 50,
    cursor: str | None = None,
    as_json: JsonFlag = False,
) -> None:
    """List licences, newest first."""

    async def work(session: AsyncSession, _: Settings) -> tuple[list[Licence], str | None]:
        wanted = licences.LicenceFilter(product=product, status=status, external_ref=external_ref)
        return await licences.list_licences(session, wanted, now=now(), cursor=cursor, limit=limit)

    rows, next_cursor = in_session(work)
    emit_page(
        as_json,
        [licence_document(row) for row in rows],
        [licence_summary(row) for row in rows],
        next_cursor,
        empty="no licences",
    )


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


@licences_app.command("set-ref")
def licences_set_ref(
    licence: LicenceRef,
    external_ref: Annotated[
        str | None, typer.Argument(help="Your own reference; leave out to clear it.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Set (or clear) the vendor's own reference of a licence, as events carry it."""
    change = parse(LicenceChange, external_ref=external_ref)
    if external_ref is None:
        change = LicenceChange(external_ref=None)
    _change(licence, change, as_json)


def machine_line(machine: MachineOut) -> str:
    state = "retired" if machine.retired_at else ("active" if machine.active else "inactive")
    return (
        f"{machine.machine_id}  {machine.seat:<8} {state:<8} last seen "
        f"{machine.last_seen_at:%Y-%m-%d %H:%M}  {machine.last_version}  "
        f"users {machine.last_user_count}"
    )


@machines_app.command("list")
def machines_list(licence: uuid.UUID, as_json: JsonFlag = False) -> None:
    """List a licence's machines, the most recently seen first."""

    async def work(session: AsyncSession, _: Settings) -> tuple[list[MachineOut], int]:
        found = await licences.get_licence(session, licence)
        listed = await licences.list_machines(session, found)
        moment = now()
        machines = [
            MachineOut.of(machine, active=licences.is_active(machine, found, moment))
            for machine in listed.machines
        ]
        return machines, listed.total

    machines, total = in_session(work)
    document = {"items": [m.model_dump(mode="json") for m in machines], "total": total}
    emit(as_json, document, "\n".join(machine_line(m) for m in machines) or "no machines")


@machines_app.command("retire")
def machines_retire(
    licence: uuid.UUID,
    machine: Annotated[str, typer.Argument(help="The machine id, or its first 12+ digits.")],
    as_json: JsonFlag = False,
) -> None:
    """Retire a machine (hardware replaced): it stops counting at once."""

    async def work(session: AsyncSession, _: Settings) -> MachineOut:
        retired = await licences.retire_machine(
            session, licence, machine, actor=CLI_ACTOR, now=now()
        )
        return MachineOut.of(retired, active=False)

    retired = in_session(work)
    emit(as_json, retired.model_dump(mode="json"), f"retired {machine_line(retired)}")


def init(as_json: JsonFlag = False) -> None:
    """On an empty store, create a demo licence and an all-scopes staff token, and print them."""

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any] | None:
        if await repository.count_licences(session):
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

    made = in_session(work, create_store=True)
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
