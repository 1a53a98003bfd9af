"""What detection found about one licence, and how it becomes (or updates) an abuse report."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.abuse import repository
from app.abuse.events import record_report_event
from app.abuse.models import AbuseReport, AbuseReportEvent, ReportKind, ReportStatus
from app.core.events.models import EventType
from app.licences.models import Machine
from app.licences.schemas import short_machine_id

# Who the report history names when detection, not staff, opened a report.
DETECTOR_ACTOR = "detector"
# A leaked key can reach thousands of machines; the report keeps the latest.
MAX_EVIDENCE_MACHINES = 50


def severity(peak_figure: int, allowed: int) -> int:
    """1..100: percent over what is allowed, so twice the limit (or more) is 100."""
    over = 100 * (peak_figure - allowed) / max(allowed, 1)
    return max(1, min(100, math.ceil(over)))


@dataclass(frozen=True)
class Finding:
    """A licence over one of its limits; `figure` and `allowed` are in the kind's own unit."""

    licence_id: uuid.UUID
    kind: ReportKind
    figure: int
    allowed: int
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    machines: list[Machine]
    facts: dict[str, Any] = field(default_factory=dict)


def _machine_evidence(machine: Machine) -> dict[str, Any]:
    return {
        "machine": short_machine_id(machine.machine_id),
        "first_seen_at": machine.first_seen_at.isoformat(),
        "last_seen_at": machine.last_seen_at.isoformat(),
        "version": machine.last_version,
        "user_count": machine.last_user_count,
        "seat": machine.seat,
    }


def _merged_evidence(known: dict[str, Any], finding: Finding) -> dict[str, Any]:
    machines = {entry["machine"]: entry for entry in known.get("machines", [])}
    for machine in finding.machines:
        entry = _machine_evidence(machine)
        previous = machines.get(entry["machine"])
        if previous is not None:
            entry["first_seen_at"] = min(previous["first_seen_at"], entry["first_seen_at"])
        machines[entry["machine"]] = entry
    latest = sorted(machines.values(), key=lambda entry: entry["last_seen_at"], reverse=True)
    return {**known, **finding.facts, "machines": latest[:MAX_EVIDENCE_MACHINES]}


async def _open(session: AsyncSession, finding: Finding, now: dt.datetime) -> AbuseReport | None:
    """A new open report, or None when another process opened it first."""
    report = AbuseReport(
        licence_id=finding.licence_id,
        id=uuid.uuid4(),
        kind=finding.kind.value,
        status=ReportStatus.OPEN.value,
        severity=severity(finding.figure, finding.allowed),
        figure=finding.figure,
        peak_figure=finding.figure,
        allowed=finding.allowed,
        first_seen_at=finding.first_seen_at,
        last_seen_at=finding.last_seen_at,
        opened_at=now,
        updated_at=now,
        closed_at=None,
        evidence=_merged_evidence({}, finding),
    )
    opening = AbuseReportEvent(
        licence_id=report.licence_id,
        report_id=report.id,
        seq=1,
        at=now,
        actor=DETECTOR_ACTOR,
        from_status=None,
        to_status=ReportStatus.OPEN.value,
        note=f"{finding.kind.value}: {finding.figure} where {finding.allowed} allowed",
    )
    return report if await repository.insert_report(session, report, opening) else None


def _update(report: AbuseReport, finding: Finding, now: dt.datetime) -> None:
    evidence = _merged_evidence(report.evidence, finding)
    peak_figure = max(report.peak_figure, finding.figure)
    changed = (
        evidence != report.evidence
        or finding.figure != report.figure
        or finding.allowed != report.allowed
        or finding.last_seen_at > report.last_seen_at
    )
    if not changed:
        return
    report.figure = finding.figure
    report.peak_figure = peak_figure
    report.allowed = finding.allowed
    report.severity = severity(peak_figure, finding.allowed)
    report.first_seen_at = min(report.first_seen_at, finding.first_seen_at)
    report.last_seen_at = max(report.last_seen_at, finding.last_seen_at)
    report.evidence = evidence
    report.updated_at = now


async def record_finding(
    session: AsyncSession, finding: Finding, now: dt.datetime
) -> AbuseReport | None:
    """Update the licence's report of this kind under review, or open one.

    A closed (resolved or dismissed) report holds back findings that do not
    go past its peak figure: staff judged that much evidence already.
    """
    report = await repository.report_under_review(session, finding.licence_id, finding.kind)
    if report is None:
        closed = await repository.last_closed_report(session, finding.licence_id, finding.kind)
        if closed is not None and finding.figure <= closed.peak_figure:
            return None
        opened = await _open(session, finding, now)
        if opened is not None:
            await record_report_event(session, EventType.REPORT_OPENED, opened, at=now)
            return opened
        # Another process opened it between our look and our insert.
        report = await repository.report_under_review(session, finding.licence_id, finding.kind)
        assert report is not None
    peak_before = report.peak_figure
    _update(report, finding, now)
    if report.peak_figure > peak_before:
        await record_report_event(session, EventType.REPORT_CHANGED, report, at=now, change="peak")
    return report
