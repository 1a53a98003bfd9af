"""Helpers for abuse-detection tests: flushes, sweeps, and reports as detection records them."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from sqlalchemy import select

from app.abuse.findings import Finding, record_finding
from app.abuse.models import AbuseReport, ReportKind
from tests.support import app_parts

REPORTS = "/v1/admin/abuse-reports"


async def detect(app: FastAPI) -> None:
    """What the server does in the background: write the ping path's findings, then sweep."""
    await app_parts.abuse(app).flush()
    assert await app_parts.abuse(app).sweep() is not None


async def stored_reports(app: FastAPI) -> list[AbuseReport]:
    async with app_parts.database(app).sessions() as session:
        rows = await session.scalars(select(AbuseReport).order_by(AbuseReport.opened_at))
        return list(rows)


async def kinds(app: FastAPI) -> list[tuple[str, str]]:
    """(licence id, kind) of every report, sorted."""
    return sorted((str(report.licence_id), report.kind) for report in await stored_reports(app))


async def make_report(
    app: FastAPI, licence_id: str, kind: ReportKind, figure: int, allowed: int = 1
) -> AbuseReport:
    """A report as detection would record it, without the pings behind it."""
    now = app_parts.clock(app).now()
    finding = Finding(
        licence_id=uuid.UUID(licence_id),
        kind=kind,
        figure=figure,
        allowed=allowed,
        first_seen_at=now,
        last_seen_at=now,
        machines=[],
    )
    async with app_parts.database(app).sessions() as session, session.begin():
        report = await record_finding(session, finding, now)
    assert report is not None
    return report
