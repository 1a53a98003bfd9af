"""Abuse report events for the outbox: the report's figures and the licence's reference."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.abuse.models import AbuseReport
from app.core.events.models import EventType
from app.licences import repository as licences
from app.licences.events import record_licence_event


async def record_report_event(
    session: AsyncSession,
    event_type: EventType,
    report: AbuseReport,
    *,
    at: dt.datetime,
    **facts: Any,
) -> None:
    """report.opened or report.changed: counts and states, never the evidence's machines."""
    licence = await licences.get_licence(session, report.licence_id)
    if licence is None:
        return
    await record_licence_event(
        session,
        event_type,
        licence,
        at=at,
        report_id=str(report.id),
        kind=report.kind,
        status=report.status,
        severity=report.severity,
        figure=report.figure,
        peak_figure=report.peak_figure,
        allowed=report.allowed,
        **facts,
    )
