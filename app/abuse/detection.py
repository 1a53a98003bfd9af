"""The four detections, each judged per licence from the tables alone, and the sweep over all.

The ping path names the licences worth a look at once (see buffer.py); the
sweep finds every licence worth a look from the tables, so findings lost in a
crash are found again. Both judge a licence with the same functions here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.abuse import repository
from app.abuse.findings import MAX_EVIDENCE_MACHINES, Finding, record_finding
from app.abuse.models import AbuseReport, ReportKind
from app.core.clock import start_of_day
from app.core.settings import Settings
from app.licences import repository as licences
from app.licences.models import Licence, LicenceStatus, Machine

# No licence's activity window is longer (LicenceCreate allows up to 365 days).
LONGEST_WINDOW = dt.timedelta(days=365)
# pg_try_advisory_xact_lock key: one sweep at a time across every node.
SWEEP_LOCK_KEY = int.from_bytes(hashlib.sha256(b"callhome:detect").digest()[:8], signed=True)


@dataclass(frozen=True)
class Thresholds:
    churn_window: dt.timedelta
    churn_factor: float
    churn_min_machines: int
    spread_factor: float
    spread_min_networks: int

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        return cls(
            churn_window=dt.timedelta(days=settings.churn_window_days),
            churn_factor=settings.churn_factor,
            churn_min_machines=settings.churn_min_machines,
            spread_factor=settings.spread_factor,
            spread_min_networks=settings.spread_min_networks,
        )

    def churn_allowed(self, max_machines: int) -> int:
        return max(self.churn_min_machines, math.ceil(self.churn_factor * max_machines))

    def spread_allowed(self, max_machines: int) -> int:
        return max(self.spread_min_networks, math.ceil(self.spread_factor * max_machines))


def _window(licence: Licence) -> dt.timedelta:
    return licence.seat_window


async def judge_machines(
    session: AsyncSession, licence: Licence, now: dt.datetime, noted_at: dt.datetime
) -> Finding | None:
    """More machines in use at once than allowed, on two separate checks.

    The first check only notes a suspicion. A later one confirms it when more
    machines than allowed have been seen since: a re-imaged PC, whose old id
    falls silent, never confirms it.
    """
    seated = await licences.seated_machine_rows(session, licence, now)
    kind = ReportKind.MACHINES_OVER_LIMIT
    suspect = await repository.locked_suspect(session, licence.id, kind)
    if len(seated) <= licence.max_machines:
        if suspect is not None:
            await repository.drop_suspect(session, suspect)
        return None
    if suspect is None:
        await repository.note_suspect(
            session, licence.id, kind, noted_at=noted_at, figure=len(seated)
        )
        return None
    confirmed = [machine for machine in seated if machine.last_seen_at >= suspect.noted_at]
    if len(confirmed) <= licence.max_machines:
        return None
    return Finding(
        licence_id=licence.id,
        kind=ReportKind.MACHINES_OVER_LIMIT,
        figure=len(confirmed),
        allowed=licence.max_machines,
        first_seen_at=suspect.noted_at,
        last_seen_at=confirmed[0].last_seen_at,
        machines=confirmed,
    )


async def _machines(
    session: AsyncSession, licence: Licence, machine_ids: Iterable[str]
) -> list[Machine]:
    return await licences.machines_by_ids(
        session, licence.id, list(machine_ids), limit=MAX_EVIDENCE_MACHINES
    )


async def judge_users(session: AsyncSession, licence: Licence, now: dt.datetime) -> Finding | None:
    """A user count above the licence's within its activity window."""
    if licence.max_users is None:
        return None
    rows = await repository.machines_over_user_limit(
        session, licence.id, now - _window(licence), licence.max_users
    )
    if not rows:
        return None
    peak_user_count = max(row[1] for row in rows)
    return Finding(
        licence_id=licence.id,
        kind=ReportKind.USERS_OVER_LIMIT,
        figure=peak_user_count,
        allowed=licence.max_users,
        # Ping times come back naive from SQLite's aggregates.
        first_seen_at=_aware(min(row[3] for row in rows)),
        last_seen_at=_aware(max(row[4] for row in rows)),
        machines=await _machines(session, licence, (row[0] for row in rows)),
        facts={"peak_user_count": peak_user_count, "pings_over_limit": sum(r[2] for r in rows)},
    )


def _aware(moment: dt.datetime | str) -> dt.datetime:
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


async def judge_churn(
    session: AsyncSession, licence: Licence, now: dt.datetime, thresholds: Thresholds
) -> Finding | None:
    """More distinct machines within the churn window than a fair turnover: a leaked key."""
    seen_after = now - thresholds.churn_window
    count, first_seen_at, last_seen_at = await repository.recent_machine_figures(
        session, licence.id, seen_after
    )
    allowed = thresholds.churn_allowed(licence.max_machines)
    if count <= allowed:
        return None
    latest = await repository.latest_recent_machines(
        session, licence.id, seen_after, limit=MAX_EVIDENCE_MACHINES
    )
    return Finding(
        licence_id=licence.id,
        kind=ReportKind.MACHINE_CHURN,
        figure=count,
        allowed=allowed,
        first_seen_at=_aware(first_seen_at),
        last_seen_at=_aware(last_seen_at),
        machines=latest,
        facts={"window_days": thresholds.churn_window.days},
    )


def _days(now: dt.datetime) -> list[dt.datetime]:
    """Yesterday and today: a sweep just after midnight still judges the day that ended."""
    today = start_of_day(now)
    return [today - dt.timedelta(days=1), today]


async def judge_spread(
    session: AsyncSession, licence: Licence, now: dt.datetime, thresholds: Thresholds
) -> Finding | None:
    """More distinct networks on one UTC day than the licence's machines would explain."""
    allowed = thresholds.spread_allowed(licence.max_machines)
    for day in _days(now):
        networks, first_seen_at, last_seen_at = await repository.network_spread(
            session, licence.id, day
        )
        if networks <= allowed:
            continue
        machine_ids = await repository.machines_pinging_on(session, licence.id, day)
        return Finding(
            licence_id=licence.id,
            kind=ReportKind.NETWORK_SPREAD,
            figure=networks,
            allowed=allowed,
            first_seen_at=_aware(first_seen_at),
            last_seen_at=_aware(last_seen_at),
            machines=await _machines(session, licence, machine_ids),
            facts={"day": day.date().isoformat()},
        )
    return None


@dataclass
class Noted:
    """Licences the ping path found over a limit since the last flush."""

    machines_over_limit: dict[uuid.UUID, dt.datetime] = field(default_factory=dict)
    users_over_limit: set[uuid.UUID] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.machines_over_limit or self.users_over_limit)


async def _active_licences(
    session: AsyncSession, licence_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Licence]:
    # Suspended and revoked licences are refused at the ping already: nothing to report.
    ids = list(set(licence_ids))
    if not ids:
        return {}
    rows = await licences.active_licences(session, ids, LicenceStatus.ACTIVE.value)
    return {licence.id: licence for licence in rows}


async def judge_noted(session: AsyncSession, noted: Noted, now: dt.datetime) -> list[AbuseReport]:
    """Judge the licences the ping path named, and record what is found."""
    licences = await _active_licences(
        session, [*noted.machines_over_limit, *noted.users_over_limit]
    )
    findings: list[Finding | None] = []
    for licence_id, noted_at in sorted(noted.machines_over_limit.items()):
        if licence_id in licences:
            findings.append(await judge_machines(session, licences[licence_id], now, noted_at))
    for licence_id in sorted(noted.users_over_limit):
        if licence_id in licences:
            findings.append(await judge_users(session, licences[licence_id], now))
    return await _record(session, findings, now)


async def _record(
    session: AsyncSession, findings: Iterable[Finding | None], now: dt.datetime
) -> list[AbuseReport]:
    reports = []
    for finding in findings:
        if finding is not None:
            report = await record_finding(session, finding, now)
            if report is not None:
                reports.append(report)
    return reports


@dataclass(frozen=True)
class SweepOutcome:
    licences_judged: int
    reports: list[AbuseReport]


async def _over_machine_limit(session: AsyncSession, now: dt.datetime) -> set[uuid.UUID]:
    found = await repository.over_machine_limit(session, now)
    suspects = await repository.suspected_licences(session, ReportKind.MACHINES_OVER_LIMIT)
    # Suspicions of licences back under their limit are judged too: it clears them.
    return found | suspects


async def sweep(session: AsyncSession, settings: Settings, now: dt.datetime) -> SweepOutcome | None:
    """Judge every licence the tables show near a limit; None when another node is sweeping."""
    if not await repository.take_sweep_lock(session, SWEEP_LOCK_KEY):
        return None
    thresholds = Thresholds.of(settings)
    machine_ids = await _over_machine_limit(session, now)
    user_ids = await repository.over_user_limit(session, now - LONGEST_WINDOW)
    churn_ids = await repository.churning(
        session, now - thresholds.churn_window, thresholds.churn_min_machines
    )
    spread_ids = await repository.spreading(session, _days(now)[0], thresholds.spread_min_networks)
    licences = await _active_licences(session, machine_ids | user_ids | churn_ids | spread_ids)
    findings: list[Finding | None] = []
    for licence_id in sorted(machine_ids & licences.keys()):
        findings.append(await judge_machines(session, licences[licence_id], now, now))
    for licence_id in sorted(user_ids & licences.keys()):
        findings.append(await judge_users(session, licences[licence_id], now))
    for licence_id in sorted(churn_ids & licences.keys()):
        findings.append(await judge_churn(session, licences[licence_id], now, thresholds))
    for licence_id in sorted(spread_ids & licences.keys()):
        findings.append(await judge_spread(session, licences[licence_id], now, thresholds))
    return SweepOutcome(len(licences), await _record(session, findings, now))
