"""`callhome reports` and `callhome detect`: the staff API's twins."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.abuse import detection, service
from app.abuse.models import ReportKind, ReportStatus
from app.abuse.schemas import ReportChange, ReportDetail, ReportOut, ReportSort
from app.core.commands import CLI_ACTOR, JsonFlag, emit, emit_page, in_session, now, parse
from app.core.settings import Settings

reports_app = typer.Typer(help="Abuse reports: read, move through their lifecycle, export.")

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]
Since = Annotated[
    dt.datetime | None,
    typer.Option(formats=DATE_FORMATS, help="Last seen at or after this (UTC)."),
]
StatusOption = Annotated[ReportStatus | None, typer.Option(help="Only reports in this status.")]
KindOption = Annotated[ReportKind | None, typer.Option(help="Only reports of this kind.")]
ProductOption = Annotated[str | None, typer.Option(help="Only licences of this product.")]
LicenceOption = Annotated[uuid.UUID | None, typer.Option(help="Only this licence's reports.")]
SortOption = Annotated[ReportSort, typer.Option(help="Highest severity or latest seen first.")]
Note = Annotated[str, typer.Option(help="Why: kept in the report's history.")]


def utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


def report_filter(
    status: ReportStatus | None,
    kind: ReportKind | None,
    product: str | None,
    licence: uuid.UUID | None,
    since: dt.datetime | None,
) -> service.ReportFilter:
    return service.ReportFilter(
        status=status, kind=kind, product=product, licence_id=licence, since=utc(since)
    )


def report_line(report: ReportOut) -> str:
    return (
        f"{report.id}  {report.kind:<20} {report.status:<12} severity {report.severity:>3}  "
        f"{report.figure}/{report.allowed}  {report.product}  last seen "
        f"{report.last_seen_at:%Y-%m-%d %H:%M}"
    )


def detail_text(detail: ReportDetail) -> str:
    lines = [report_line(detail), f"licence {detail.licence_id}"]
    lines += [
        f"  {entry['machine']}  {entry['first_seen_at'][:16]} .. {entry['last_seen_at'][:16]}"
        f"  {entry['version']}  users {entry['user_count']}"
        for entry in detail.evidence.get("machines", [])
    ]
    lines += [
        f"  {event.at:%Y-%m-%d %H:%M} {event.actor}: {event.to_status} - {event.note}"
        for event in detail.events
    ]
    return "\n".join(lines)


@reports_app.command("list")
def reports_list(
    status: StatusOption = None,
    kind: KindOption = None,
    product: ProductOption = None,
    licence: LicenceOption = None,
    since: Since = None,
    sort: SortOption = ReportSort.SEVERITY,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    cursor: str | None = None,
    as_json: JsonFlag = False,
) -> None:
    """List abuse reports, highest severity first."""
    wanted = report_filter(status, kind, product, licence, since)

    async def work(session: AsyncSession, _: Settings) -> tuple[list[ReportOut], str | None]:
        views, next_cursor = await service.list_reports(
            session, wanted, sort=sort, cursor=cursor, limit=limit
        )
        return [ReportOut.model_validate(view.document()) for view in views], next_cursor

    reports, next_cursor = in_session(work)
    emit_page(
        as_json,
        [report.model_dump(mode="json") for report in reports],
        [report_line(report) for report in reports],
        next_cursor,
        empty="no reports",
    )


@reports_app.command("show")
def reports_show(report_id: uuid.UUID, as_json: JsonFlag = False) -> None:
    """Show a report with its evidence and history."""

    async def work(session: AsyncSession, _: Settings) -> ReportDetail:
        return await service.detail_of(session, await service.get_report(session, report_id))

    detail = in_session(work)
    emit(as_json, detail.model_dump(mode="json"), detail_text(detail))


def _change(report_id: uuid.UUID, status: ReportStatus, note: str, as_json: bool) -> None:
    change = parse(ReportChange, status=status, note=note)

    async def work(session: AsyncSession, _: Settings) -> ReportDetail:
        view = await service.change_report(session, report_id, change, actor=CLI_ACTOR, now=now())
        return await service.detail_of(session, view)

    detail = in_session(work)
    emit(as_json, detail.model_dump(mode="json"), detail_text(detail))


@reports_app.command("ack")
def reports_ack(report_id: uuid.UUID, note: Note, as_json: JsonFlag = False) -> None:
    """Acknowledge a report: someone is on it."""
    _change(report_id, ReportStatus.ACKNOWLEDGED, note, as_json)


@reports_app.command("resolve")
def reports_resolve(report_id: uuid.UUID, note: Note, as_json: JsonFlag = False) -> None:
    """Resolve a report: the abuse was dealt with."""
    _change(report_id, ReportStatus.RESOLVED, note, as_json)


@reports_app.command("dismiss")
def reports_dismiss(report_id: uuid.UUID, note: Note, as_json: JsonFlag = False) -> None:
    """Dismiss a report: no abuse; it stays dismissed until the evidence grows."""
    _change(report_id, ReportStatus.DISMISSED, note, as_json)


@reports_app.command("export")
def reports_export(
    status: StatusOption = None,
    kind: KindOption = None,
    product: ProductOption = None,
    licence: LicenceOption = None,
    since: Since = None,
    sort: SortOption = ReportSort.SEVERITY,
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Export the filtered list as CSV."""
    wanted = report_filter(status, kind, product, licence, since)
    body = in_session(lambda session, _: service.export_csv(session, wanted, sort=sort))
    if output is None:
        typer.echo(body, nl=False)
    else:
        output.write_text(body, encoding="utf-8")


def detect(as_json: JsonFlag = False) -> None:
    """Run one detection sweep (for cron); skipped while another node sweeps."""

    async def work(session: AsyncSession, settings: Settings) -> detection.SweepOutcome | None:
        return await detection.sweep(session, settings, now())

    outcome = in_session(work)
    if outcome is None:
        emit(as_json, {"swept": False}, "another node is sweeping; nothing done")
        return
    document = {
        "swept": True,
        "licences_judged": outcome.licences_judged,
        "reports": [str(report.id) for report in outcome.reports],
    }
    emit(
        as_json,
        document,
        f"judged {outcome.licences_judged} licences; {len(outcome.reports)} reports opened or "
        "updated",
    )
