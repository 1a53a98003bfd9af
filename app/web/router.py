"""The staff pages: thin wiring from forms and links to the services the staff API uses."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, BeforeValidator, ValidationError
from starlette.responses import RedirectResponse, Response

from app.abuse import service as reports
from app.abuse.models import ReportKind, ReportStatus
from app.abuse.schemas import ReportChange, ReportSort
from app.core.auth import TOKEN_PREFIX, Scope, usable_token
from app.core.database import ReadSession, WriteSession, database_of
from app.core.errors import Forbidden, InvalidInput
from app.core.schemas import PRODUCT_PATTERN
from app.core.settings import Settings
from app.licences import service as licences
from app.licences.cache import LicenceSnapshot, licence_status
from app.licences.models import LicenceStatus
from app.licences.schemas import MACHINE_REF_PATTERN
from app.releases import repository as release_repository
from app.releases import service as releases
from app.web import usage_chart
from app.web.pages import SECTIONS, page_url, render
from app.web.sessions import (
    COOKIE_NAME,
    SignedIn,
    SignInRequired,
    check_csrf_token,
    check_same_origin,
    clear_session_cookie,
    cookie_must_be_secure,
    end_session,
    resume_session,
    served_over_https,
    set_session_cookie,
    start_session,
)

logger = logging.getLogger("callhome.web")
router = APIRouter()

# Form fields are bounded: nothing longer is worth reading.
CSRF_FIELD_LENGTH = 128
TOKEN_FIELD_LENGTH = 256
REPORTS_PER_PAGE = 50
LICENCES_PER_PAGE = 50


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _now(request: Request) -> dt.datetime:
    now: dt.datetime = request.app.state.clock.now()
    return now


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# -- who is signed in, and what they may do -------------------------------------


async def signed_in(request: Request) -> SignedIn:
    cookie_value = request.cookies.get(COOKIE_NAME)
    if not cookie_value or len(cookie_value) > 64:
        raise SignInRequired()
    # The primary, never a replica: a sign-out or revocation takes effect at once.
    async with database_of(request).sessions() as session, session.begin():
        found = await resume_session(session, cookie_value, _settings(request), _now(request))
    if found is None:
        raise SignInRequired()
    return found


SignedInStaff = Annotated[SignedIn, Depends(signed_in)]


def reading(scope: Scope) -> object:
    """A page that needs `scope`."""

    async def check(current: SignedInStaff) -> SignedIn:
        if scope.value not in current.staff.scopes:
            raise Forbidden(f"This page needs a token with the {scope.value} scope")
        return current

    return Depends(check)


async def posted_form(
    request: Request,
    current: SignedInStaff,
    csrf_token: Annotated[str | None, Form(max_length=CSRF_FIELD_LENGTH)] = None,
) -> SignedIn:
    """A form this very page sent: same origin, carrying the session's CSRF token."""
    check_same_origin(request, _settings(request))
    check_csrf_token(current, csrf_token)
    return current


PostedForm = Annotated[SignedIn, Depends(posted_form)]


def writing(scope: Scope) -> object:
    """A form post that changes something and needs `scope`: checked by the server,
    whatever the page showed."""

    async def check(current: PostedForm) -> SignedIn:
        if scope.value not in current.staff.scopes:
            raise Forbidden(f"This change needs a token with the {scope.value} scope")
        return current

    return Depends(check)


ReportsReader = Annotated[SignedIn, reading(Scope.REPORTS_READ)]
ReportsWriter = Annotated[SignedIn, writing(Scope.REPORTS_WRITE)]
LicencesReader = Annotated[SignedIn, reading(Scope.LICENCES_READ)]
LicencesWriter = Annotated[SignedIn, writing(Scope.LICENCES_WRITE)]
# The staff API lists releases with releases:write; the page asks no less.
ReleasesReader = Annotated[SignedIn, reading(Scope.RELEASES_WRITE)]

# -- signing in and out -----------------------------------------------------------


@router.get("/")
async def home(request: Request, current: SignedInStaff) -> Response:
    for path, _, scope in SECTIONS:
        if scope.value in current.staff.scopes:
            return _see_other(page_url(request, f"/{path}"))
    raise Forbidden("This token has none of the scopes the staff page shows")


@router.get("/sign-in")
async def sign_in_form(
    request: Request, signed_out: Annotated[bool, Query(alias="signed-out")] = False
) -> Response:
    return render(request, "sign_in.html", None, signed_out=signed_out, refused=False)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    session: WriteSession,
    token: Annotated[str, Form(max_length=TOKEN_FIELD_LENGTH)] = "",
) -> Response:
    settings = _settings(request)
    check_same_origin(request, settings)
    secure = cookie_must_be_secure(request, settings)
    now = _now(request)
    secret = token.strip()
    found = await usable_token(session, secret, now) if secret.startswith(TOKEN_PREFIX) else None
    if found is None:
        # Whatever the reason, one answer: the page tells no one which tokens exist.
        logger.warning("staff sign-in refused")
        return render(
            request, "sign_in.html", None, status_code=401, signed_out=False, refused=True
        )
    cookie_value = await start_session(session, found, settings, now)
    response = _see_other(page_url(request, "/"))
    set_session_cookie(
        response, cookie_value, secure=secure, max_age_s=settings.staff_session_lifetime_s
    )
    return response


@router.post("/sign-out")
async def sign_out(request: Request, current: PostedForm, session: WriteSession) -> Response:
    await end_session(session, current, _now(request))
    response = _see_other(page_url(request, "/sign-in", **{"signed-out": "true"}))
    clear_session_cookie(response, secure=served_over_https(request, _settings(request)))
    return response


# -- abuse reports ----------------------------------------------------------------


def _blank_is_none(value: object) -> object:
    # An empty form field means "any", not an invalid value.
    return None if value == "" else value


class ReportQuery(BaseModel):
    """The queue's filters as the filter form sends them."""

    status: Annotated[ReportStatus | None, BeforeValidator(_blank_is_none)] = None
    kind: Annotated[ReportKind | None, BeforeValidator(_blank_is_none)] = None
    product: Annotated[
        str | None, BeforeValidator(_blank_is_none), Query(pattern=PRODUCT_PATTERN)
    ] = None
    licence: Annotated[uuid.UUID | None, BeforeValidator(_blank_is_none)] = None
    since: Annotated[dt.date | None, BeforeValidator(_blank_is_none)] = None
    sort: ReportSort = ReportSort.SEVERITY

    def wanted(self) -> reports.ReportFilter:
        return reports.ReportFilter(
            status=self.status,
            kind=self.kind,
            product=self.product,
            licence_id=self.licence,
            since=None
            if self.since is None
            else dt.datetime.combine(self.since, dt.time(), tzinfo=dt.UTC),
        )

    def links(self) -> dict[str, object]:
        """The filters as query parameters, for the export and next-page links."""
        return {
            name: value.value if hasattr(value, "value") else value
            for name, value in self.model_dump().items()
        }


ReportFilters = Annotated[ReportQuery, Query()]
Cursor = Annotated[str | None, Query(max_length=512)]


@router.get("/reports")
async def report_queue(
    request: Request,
    current: ReportsReader,
    session: ReadSession,
    filters: ReportFilters,
    cursor: Cursor = None,
) -> Response:
    views, next_cursor = await reports.list_reports(
        session,
        filters.wanted(),
        sort=filters.sort,
        cursor=cursor or None,
        limit=REPORTS_PER_PAGE,
    )
    return render(
        request,
        "reports.html",
        current,
        views=views,
        filters=filters,
        statuses=list(ReportStatus),
        kinds=list(ReportKind),
        sorts=list(ReportSort),
        export_url=page_url(request, "/reports/export", **filters.links()),
        next_url=next_cursor
        and page_url(request, "/reports", **filters.links(), cursor=next_cursor),
        first_url=cursor and page_url(request, "/reports", **filters.links()),
    )


@router.get("/reports/export")
async def export_reports(
    _: ReportsReader, session: ReadSession, filters: ReportFilters
) -> Response:
    body = await reports.export_csv(session, filters.wanted(), sort=filters.sort)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="abuse-reports.csv"'},
    )


ReportDone = Literal["note", "acknowledged", "resolved", "dismissed"]


@router.get("/reports/{report_id}")
async def report_page(
    request: Request,
    report_id: uuid.UUID,
    current: ReportsReader,
    session: ReadSession,
    done: ReportDone | None = None,
) -> Response:
    view = await reports.get_report(session, report_id)
    detail = await reports.detail_of(session, view)
    return render(
        request,
        "report.html",
        current,
        report=detail,
        key_last4=view.key_last4,
        next_statuses=reports.next_statuses(detail.status),
        may_change=Scope.REPORTS_WRITE.value in current.staff.scopes,
        done=done,
    )


@router.post("/reports/{report_id}")
async def change_report(
    request: Request,
    report_id: uuid.UUID,
    current: ReportsWriter,
    session: WriteSession,
    note: Annotated[str, Form(max_length=2000)] = "",
    status: Annotated[Literal["", "acknowledged", "resolved", "dismissed"], Form()] = "",
) -> Response:
    try:
        change = ReportChange(status=ReportStatus(status) if status else None, note=note)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from error
    await reports.change_report(
        session, report_id, change, actor=current.staff.name, now=_now(request)
    )
    return _see_other(page_url(request, f"/reports/{report_id}", done=status or "note"))


# -- licences ---------------------------------------------------------------------


class LicenceQuery(BaseModel):
    search: Annotated[str | None, BeforeValidator(_blank_is_none), Query(max_length=64)] = None
    product: Annotated[
        str | None, BeforeValidator(_blank_is_none), Query(pattern=PRODUCT_PATTERN)
    ] = None
    status: Annotated[LicenceStatus | None, BeforeValidator(_blank_is_none)] = None


@router.get("/licences")
async def licence_list(
    request: Request,
    current: LicencesReader,
    session: ReadSession,
    filters: Annotated[LicenceQuery, Query()],
    cursor: Cursor = None,
) -> Response:
    search = (filters.search or "").strip()
    key_last4 = None
    if search:
        try:
            return _see_other(page_url(request, f"/licences/{uuid.UUID(search)}"))
        except ValueError:
            if len(search) != 4:
                raise InvalidInput(
                    "Search by a licence id or the last 4 characters of its key"
                ) from None
            key_last4 = search
    wanted = licences.LicenceFilter(
        product=filters.product, status=filters.status, key_last4=key_last4
    )
    found, next_cursor = await licences.list_licences(
        session, wanted, cursor=cursor or None, limit=LICENCES_PER_PAGE
    )
    links = {"search": search, "product": filters.product, "status": filters.status}
    return render(
        request,
        "licences.html",
        current,
        licences=found,
        filters=filters,
        statuses=list(LicenceStatus),
        next_url=next_cursor and page_url(request, "/licences", **links, cursor=next_cursor),
        first_url=cursor and page_url(request, "/licences", **links),
    )


Retired = Annotated[str | None, Query(pattern=MACHINE_REF_PATTERN)]


@router.get("/licences/{licence_id}")
async def licence_page(
    request: Request,
    licence_id: uuid.UUID,
    current: LicencesReader,
    session: ReadSession,
    days: Annotated[int, Query(ge=7, le=365)] = usage_chart.DEFAULT_DAYS,
    retired: Retired = None,
) -> Response:
    now = _now(request)
    licence = await licences.get_licence(session, licence_id)
    listed = await licences.list_machines(session, licence)
    may_read_reports = Scope.REPORTS_READ.value in current.staff.scopes
    open_reports: list[reports.ReportView] = []
    if may_read_reports:
        open_reports, _ = await reports.list_reports(
            session, reports.ReportFilter(licence_id=licence.id), limit=REPORTS_PER_PAGE
        )
    return render(
        request,
        "licence.html",
        current,
        licence=licence,
        verdict=licence_status(LicenceSnapshot.of(licence), now),
        usage=await licences.seat_usage(session, licence, now),
        machines=[
            (machine, licences.is_active(machine, licence, now)) for machine in listed.machines
        ],
        machines_total=listed.total,
        charts=await usage_chart.charts(session, licence, today=now.date(), days=days),
        days=days,
        reports=open_reports,
        may_read_reports=may_read_reports,
        may_retire=Scope.LICENCES_WRITE.value in current.staff.scopes,
        retired=retired,
    )


@router.post("/licences/{licence_id}/machines/{machine}/retire")
async def retire_machine(
    request: Request,
    licence_id: uuid.UUID,
    machine: Annotated[str, Path(pattern=MACHINE_REF_PATTERN)],
    current: LicencesWriter,
    session: WriteSession,
) -> Response:
    retired = await licences.retire_machine(
        session, licence_id, machine, actor=current.staff.name, now=_now(request)
    )
    return _see_other(
        page_url(
            request,
            f"/licences/{licence_id}",
            retired=licences.short_machine_id(retired.machine_id),
        )
    )


# -- releases and feeds -------------------------------------------------------------


@router.get("/releases")
async def release_page(request: Request, current: ReleasesReader, session: ReadSession) -> Response:
    return render(
        request,
        "releases.html",
        current,
        tracks=await releases.release_tracks(session),
        feeds=await release_repository.feed_summaries(session),
    )
