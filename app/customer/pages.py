"""The key holder's page under /my/: signed in with the licence key, no script, the staff
page's cookie, origin, CSRF and header rules; thin wiring to the services staff use."""

import datetime as dt
import pathlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Form, Path, Query, Request, UploadFile
from starlette.datastructures import State
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from app.core.auth.browser import (
    SessionCookie,
    check_same_origin,
    cookie_must_be_secure,
    form_dependency,
    see_other,
    see_other_signed_in,
    see_other_signed_out,
    session_dependency,
)
from app.core.deps import Now, PseudonymsDep, SettingsDep, SignerDep, WriteSession
from app.core.errors import PayloadTooLarge
from app.core.network import caller_address
from app.customer import account as accounts
from app.customer import offline
from app.customer.account import Account
from app.licences import service as licences
from app.licences.cache import LicenceSnapshot, licence_status
from app.licences.lookup import LicenceLookupDep
from app.licences.schemas import MACHINE_REF_PATTERN
from app.licences.service import CUSTOMER_ACTOR
from app.privacy import export, requests
from app.privacy.router import json_download
from app.privacy.usage import daily_usage
from app.web.app import create_page_app
from app.web.pages import page_url, template_environment

CUSTOMER_PAGES_PATH = "/my"
CUSTOMER_COOKIE = SessionCookie("callhome_customer", CUSTOMER_PAGES_PATH)
# A licence key is at most 128 characters (the ping's contract).
KEY_FIELD_LENGTH = 128
USAGE_DAYS = 30

templates = Jinja2Templates(env=template_environment(pathlib.Path(__file__).parent / "templates"))
router = APIRouter()


def render(
    request: Request,
    template: str,
    account: Account | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    base: str = request.scope.get("root_path", "")
    return templates.TemplateResponse(
        request, template, {"base": base, "account": account, **context}, status_code=status_code
    )


_signed_in = session_dependency(CUSTOMER_COOKIE, accounts.resume_session)
_signed_in_form = form_dependency(_signed_in, lambda account: account.csrf_token)
SignedIn = Annotated[Account, Depends(_signed_in)]
SignedInForm = Annotated[Account, Depends(_signed_in_form)]


@router.get("/sign-in")
async def sign_in_form(
    request: Request, signed_out: Annotated[bool, Query(alias="signed-out")] = False
) -> Response:
    return render(request, "sign_in.html", None, signed_out=signed_out, refused=False)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    session: WriteSession,
    lookup: LicenceLookupDep,
    pseudonyms: PseudonymsDep,
    settings: SettingsDep,
    now: Now,
    key: Annotated[str, Form(max_length=KEY_FIELD_LENGTH)] = "",
) -> Response:
    check_same_origin(request, settings)
    secure = cookie_must_be_secure(request, settings)
    address = caller_address(request, settings.trusted_proxies)
    # Limited per network and per key, as the ping and the deactivation are.
    state = await lookup.admit(pseudonyms.key_hash(key.strip()), address, now)
    if state is None:
        # A wrong key and an unknown one get the same answer: the page tells which exist.
        return render(
            request, "sign_in.html", None, status_code=401, signed_out=False, refused=True
        )
    cookie_value = await accounts.start_session(session, state.licence.id, settings, now)
    return see_other_signed_in(
        page_url(request, "/"),
        CUSTOMER_COOKIE,
        cookie_value,
        secure=secure,
        max_age_s=settings.customer_session_lifetime_s,
    )


@router.post("/sign-out")
async def sign_out(
    request: Request, account: SignedInForm, session: WriteSession, settings: SettingsDep, now: Now
) -> Response:
    await accounts.end_session(session, account, now)
    signed_out = page_url(request, "/sign-in", **{"signed-out": "true"})
    return see_other_signed_out(signed_out, CUSTOMER_COOKIE, request, settings)


@router.get("/")
async def licence_page(
    request: Request,
    account: SignedIn,
    session: WriteSession,
    now: Now,
    freed: Annotated[str | None, Query(pattern=MACHINE_REF_PATTERN)] = None,
    done: Annotated[Literal["erasure"] | None, Query()] = None,
) -> Response:
    licence = await licences.get_licence(session, account.licence_id)
    snapshot = LicenceSnapshot.of(licence)
    listed = await licences.list_machines(session, licence)
    today = now.date()
    since = today - dt.timedelta(days=USAGE_DAYS - 1)
    return render(
        request,
        "licence.html",
        account,
        licence=licence,
        verdict=licence_status(snapshot, now),
        grace_until=snapshot.grace_until,
        machines=[
            (machine, licences.is_active(machine, licence, now)) for machine in listed.machines
        ],
        machines_total=listed.total,
        usage=await daily_usage(session, licence.id, since=since, until=today),
        usage_days=USAGE_DAYS,
        erasure_pending=await requests.is_requested(session, licence.id),
        freed=freed,
        done=done,
    )


@router.post("/machines/{machine}/free")
async def free_machine(
    request: Request,
    machine: Annotated[str, Path(pattern=MACHINE_REF_PATTERN)],
    account: SignedInForm,
    session: WriteSession,
    now: Now,
) -> Response:
    """Free a machine's seat, as its deactivation would (audited with the actor customer)."""
    await licences.free_machine(session, account.licence_id, machine, now=now)
    return see_other(page_url(request, "/", freed=machine))


@router.get("/export")
async def export_data(account: SignedIn, session: WriteSession, now: Now) -> Response:
    """Everything held about the licence: the staff export's document (audited)."""
    document = await export.export_licence(
        session, account.licence_id, actor=CUSTOMER_ACTOR, now=now
    )
    return json_download(document, f"licence-{account.licence_id}.json")


@router.post("/erasure")
async def ask_for_erasure(
    request: Request, account: SignedInForm, session: WriteSession, now: Now
) -> Response:
    """Ask for the licence's data to be erased: recorded for staff to confirm."""
    await requests.request_erasure(session, account.licence_id, now)
    return see_other(page_url(request, "/", done="erasure"))


@router.post("/offline")
async def offline_licence_file(
    account: SignedInForm,
    session: WriteSession,
    pseudonyms: PseudonymsDep,
    signer: SignerDep,
    settings: SettingsDep,
    now: Now,
    request_file: Annotated[UploadFile, File()],
) -> Response:
    """Turn an offline activation request into this machine's licence file (audited)."""
    body = await request_file.read(offline.MAX_REQUEST_BYTES + 1)
    if len(body) > offline.MAX_REQUEST_BYTES:
        raise PayloadTooLarge(f"An activation request is at most {offline.MAX_REQUEST_BYTES} bytes")
    issued = await offline.issue(
        session,
        offline.parse_request(body),
        days=None,
        default_days=settings.offline_licence_days,
        pseudonyms=pseudonyms,
        signer=signer,
        actor=CUSTOMER_ACTOR,
        now=now,
        for_licence=account.licence_id,
    )
    return Response(
        issued.body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="machine.lic"'},
    )


def _error_page(request: Request, status: int, title: str, detail: str) -> Response:
    return render(request, "error.html", None, status_code=status, title=title, detail=detail)


def create_customer_app(state: State) -> FastAPI:
    """The key holder's pages, mounted under /my/."""
    return create_page_app(state, router, cookie=CUSTOMER_COOKIE, error_page=_error_page)
