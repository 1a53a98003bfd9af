"""The staff pages: thin wiring from forms and links to the services the staff API uses."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, BeforeValidator, ValidationError
from starlette.responses import Response

from app.abuse import service as reports
from app.abuse.models import ReportKind, ReportStatus
from app.abuse.schemas import ReportChange, ReportSort
from app.core.auth import service as staff_auth
from app.core.auth.browser import (
    check_same_origin,
    cookie_must_be_secure,
    see_other,
    see_other_signed_in,
    see_other_signed_out,
)
from app.core.auth.dependencies import STAFF_COOKIE
from app.core.auth.models import Scope
from app.core.clock import utc_midnight
from app.core.deps import Now, ReadSession, SettingsDep, WriteSession
from app.core.errors import Forbidden, InvalidInput
from app.core.pagination import CursorQuery
from app.core.schemas import PRINTABLE_PATTERN, PRODUCT_PATTERN
from app.events import service as webhooks
from app.events.models import EndpointStatus
from app.licences import service as licences
from app.licences.cache import LicenceSnapshot, licence_status
from app.licences.models import EffectiveStatus
from app.licences.schemas import MACHINE_REF_PATTERN, short_machine_id
from app.releases import service as releases
from app.web import usage_chart
from app.web.auth import (
    LicencesForm,
    LicencesPage,
    ReleasesPage,
    ReportsForm,
    ReportsPage,
    SignedIn,
    SignedInForm,
    WebhooksPage,
)
from app.web.pages import SECTIONS, page_url, render

logger = logging.getLogger("callhome.web")
router = APIRouter()

# Form fields are bounded: nothing longer is worth reading.
TOKEN_FIELD_LENGTH = 256
REPORTS_PER_PAGE = 50
LICENCES_PER_PAGE = 50
DELIVERIES_PER_PAGE = 50


# -- signing in and out -----------------------------------------------------------


@router.get("/")
async def home(request: Request, staff: SignedIn) -> Response:
    for path, _, scope in SECTIONS:
        if staff.may(scope):
            return see_other(page_url(request, f"/{path}"))
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
    settings: SettingsDep,
    now: Now,
    token: Annotated[str, Form(max_length=TOKEN_FIELD_LENGTH)] = "",
) -> Response:
    check_same_origin(request, settings)
    secure = cookie_must_be_secure(request, settings)
    found = await staff_auth.usable_token(session, token.strip(), now)
    if found is None:
        # Whatever the reason, one answer: the page tells no one which tokens exist.
        logger.warning("staff sign-in refused")
        return render(
            request, "sign_in.html", None, status_code=401, signed_out=False, refused=True
        )
    cookie_value = await staff_auth.start_session(session, found, settings, now)
    return see_other_signed_in(
        page_url(request, "/"),
        STAFF_COOKIE,
        cookie_value,
        secure=secure,
        max_age_s=settings.staff_session_lifetime_s,
    )


@router.post("/sign-out")
async def sign_out(
    request: Request, staff: SignedInForm, session: WriteSession, settings: SettingsDep, now: Now
) -> Response:
    await staff_auth.end_session(session, staff, now)
    signed_out = page_url(request, "/sign-in", **{"signed-out": "true"})
    return see_other_signed_out(signed_out, STAFF_COOKIE, request, settings)


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
            since=None if self.since is None else utc_midnight(self.since),
        )

    def links(self) -> dict[str, object]:
        """The filters as query parameters, for the export and next-page links."""
        return {
            name: value.value if hasattr(value, "value") else value
            for name, value in self.model_dump().items()
        }


ReportFilters = Annotated[ReportQuery, Query()]


@router.get("/reports")
async def report_queue(
    request: Request,
    staff: ReportsPage,
    session: ReadSession,
    filters: ReportFilters,
    cursor: CursorQuery = None,
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
        staff,
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
async def export_reports(_: ReportsPage, session: ReadSession, filters: ReportFilters) -> Response:
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
    staff: ReportsPage,
    session: ReadSession,
    done: ReportDone | None = None,
) -> Response:
    view = await reports.get_report(session, report_id)
    detail = await reports.detail_of(session, view)
    return render(
        request,
        "report.html",
        staff,
        report=detail,
        key_last4=view.key_last4,
        next_statuses=reports.next_statuses(detail.status),
        may_change=staff.may(Scope.REPORTS_WRITE),
        done=done,
    )


@router.post("/reports/{report_id}")
async def change_report(
    request: Request,
    report_id: uuid.UUID,
    staff: ReportsForm,
    session: WriteSession,
    now: Now,
    note: Annotated[str, Form(max_length=2000)] = "",
    status: Annotated[Literal["", "acknowledged", "resolved", "dismissed"], Form()] = "",
) -> Response:
    try:
        change = ReportChange(status=ReportStatus(status) if status else None, note=note)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from error
    await reports.change_report(session, report_id, change, actor=staff.name, now=now)
    return see_other(page_url(request, f"/reports/{report_id}", done=status or "note"))


# -- licences ---------------------------------------------------------------------


class LicenceQuery(BaseModel):
    search: Annotated[
        str | None,
        BeforeValidator(_blank_is_none),
        Query(max_length=64, pattern=PRINTABLE_PATTERN),
    ] = None
    product: Annotated[
        str | None, BeforeValidator(_blank_is_none), Query(pattern=PRODUCT_PATTERN)
    ] = None
    status: Annotated[EffectiveStatus | None, BeforeValidator(_blank_is_none)] = None


@router.get("/licences")
async def licence_list(
    request: Request,
    staff: LicencesPage,
    session: ReadSession,
    now: Now,
    filters: Annotated[LicenceQuery, Query()],
    cursor: CursorQuery = None,
) -> Response:
    search = (filters.search or "").strip()
    key_last4 = None
    if search:
        try:
            return see_other(page_url(request, f"/licences/{uuid.UUID(search)}"))
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
        session, wanted, now=now, cursor=cursor or None, limit=LICENCES_PER_PAGE
    )
    links = {"search": search, "product": filters.product, "status": filters.status}
    return render(
        request,
        "licences.html",
        staff,
        licences=[(licence, licence.status_at(now)) for licence in found],
        filters=filters,
        statuses=list(EffectiveStatus),
        next_url=next_cursor and page_url(request, "/licences", **links, cursor=next_cursor),
        first_url=cursor and page_url(request, "/licences", **links),
    )


Retired = Annotated[str | None, Query(pattern=MACHINE_REF_PATTERN)]


@router.get("/licences/{licence_id}")
async def licence_page(
    request: Request,
    licence_id: uuid.UUID,
    staff: LicencesPage,
    session: ReadSession,
    now: Now,
    days: Annotated[int, Query(ge=7, le=365)] = usage_chart.DEFAULT_DAYS,
    retired: Retired = None,
) -> Response:
    licence = await licences.get_licence(session, licence_id)
    listed = await licences.list_machines(session, licence)
    may_read_reports = staff.may(Scope.REPORTS_READ)
    open_reports: list[reports.ReportView] = []
    if may_read_reports:
        open_reports, _ = await reports.list_reports(
            session, reports.ReportFilter(licence_id=licence.id), limit=REPORTS_PER_PAGE
        )
    return render(
        request,
        "licence.html",
        staff,
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
        may_retire=staff.may(Scope.LICENCES_WRITE),
        retired=retired,
    )


@router.post("/licences/{licence_id}/machines/{machine}/retire")
async def retire_machine(
    request: Request,
    licence_id: uuid.UUID,
    machine: Annotated[str, Path(pattern=MACHINE_REF_PATTERN)],
    staff: LicencesForm,
    session: WriteSession,
    now: Now,
) -> Response:
    retired = await licences.retire_machine(session, licence_id, machine, actor=staff.name, now=now)
    return see_other(
        page_url(
            request,
            f"/licences/{licence_id}",
            retired=short_machine_id(retired.machine_id),
        )
    )


# -- releases and feeds -------------------------------------------------------------


@router.get("/releases")
async def release_page(request: Request, staff: ReleasesPage, session: ReadSession) -> Response:
    return render(
        request,
        "releases.html",
        staff,
        tracks=await releases.release_tracks(session),
        feeds=await releases.feed_summaries(session),
    )


# -- webhooks -------------------------------------------------------------------------


@router.get("/webhooks")
async def webhook_endpoints(
    request: Request, staff: WebhooksPage, session: ReadSession
) -> Response:
    overviews = await webhooks.endpoint_overviews(session)
    return render(
        request,
        "webhooks.html",
        staff,
        overviews=overviews,
        disabled=[o for o in overviews if o.endpoint.status == EndpointStatus.DISABLED],
    )


@router.get("/webhooks/{endpoint_id}")
async def webhook_deliveries(
    request: Request,
    endpoint_id: uuid.UUID,
    staff: WebhooksPage,
    session: ReadSession,
    cursor: CursorQuery = None,
) -> Response:
    endpoint = await webhooks.get_endpoint(session, endpoint_id)
    deliveries, next_cursor = await webhooks.deliveries(
        session, endpoint_id, cursor=cursor or None, limit=DELIVERIES_PER_PAGE
    )
    path = f"/webhooks/{endpoint_id}"
    return render(
        request,
        "webhook.html",
        staff,
        endpoint=endpoint,
        host=webhooks.url_host(endpoint),
        deliveries=deliveries,
        next_url=next_cursor and page_url(request, path, cursor=next_cursor),
        first_url=cursor and page_url(request, path),
    )
