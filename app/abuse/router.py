"""Staff API for abuse reports: thin wiring over the report service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.abuse import service
from app.abuse.auth import ReportsReader, ReportsWriter
from app.abuse.models import ReportKind, ReportStatus
from app.abuse.schemas import ReportChange, ReportDetail, ReportOut, ReportPage, ReportSort
from app.core.deps import Now, ReadSession, WriteSession
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound, problem_responses
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, CursorQuery
from app.core.schemas import PRODUCT_PATTERN, Moment

router = APIRouter(
    prefix="/v1/admin/abuse-reports",
    tags=["abuse"],
    responses=problem_responses(InvalidInput, Forbidden),
)


def report_filter(
    status: ReportStatus | None = None,
    kind: ReportKind | None = None,
    product: Annotated[str | None, Query(pattern=PRODUCT_PATTERN)] = None,
    licence: uuid.UUID | None = None,
    since: Annotated[Moment | None, Query(description="Last seen at or after this")] = None,
) -> service.ReportFilter:
    return service.ReportFilter(
        status=status, kind=kind, product=product, licence_id=licence, since=since
    )


Filter = Annotated[service.ReportFilter, Depends(report_filter)]


@router.get("")
async def list_reports(
    _: ReportsReader,
    session: ReadSession,
    wanted: Filter,
    sort: ReportSort = ReportSort.SEVERITY,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> ReportPage:
    views, next_cursor = await service.list_reports(
        session, wanted, sort=sort, cursor=cursor, limit=limit
    )
    return ReportPage(
        items=[ReportOut.model_validate(view.document()) for view in views],
        next_cursor=next_cursor,
    )


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The filtered list as CSV"}},
)
async def export_reports(
    _: ReportsReader,
    session: ReadSession,
    wanted: Filter,
    sort: ReportSort = ReportSort.SEVERITY,
) -> Response:
    body = await service.export_csv(session, wanted, sort=sort)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="abuse-reports.csv"'},
    )


@router.get("/{report_id}", responses=problem_responses(NotFound))
async def show_report(report_id: uuid.UUID, _: ReportsReader, session: ReadSession) -> ReportDetail:
    return await service.detail_of(session, await service.get_report(session, report_id))


@router.patch("/{report_id}", responses=problem_responses(NotFound, Conflict))
async def change_report(
    report_id: uuid.UUID,
    change: ReportChange,
    staff: ReportsWriter,
    session: WriteSession,
    now: Now,
) -> ReportDetail:
    view = await service.change_report(session, report_id, change, actor=staff.name, now=now)
    return await service.detail_of(session, view)
