"""Every table has a retention: ended licences are erased whole with their reports and
audit entries, closed reports, audit entries and ended staff tokens expire, as time passes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from app.abuse.models import AbuseReport, AbuseReportEvent, ReportKind
from app.core import auth
from app.core.audit import AuditEntry
from app.core.auth.models import StaffToken
from app.customer import account
from app.ingest.models import pings
from app.licences.models import CustomerSession, Licence, Machine
from app.privacy import requests
from app.privacy.maintenance import MaintenanceReport, run_maintenance
from app.privacy.models import ErasureRequest
from tests.support import app_parts
from tests.support.abuse import make_report
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.offline import activation_request, issue_file
from tests.support.pings import ping

LICENCES = "/v1/admin/licences"
REPORTS = "/v1/admin/abuse-reports"


async def maintain(app: FastAPI, clock: FrozenClock, **settings: Any) -> MaintenanceReport:
    report = await run_maintenance(
        app_parts.database(app), app_parts.settings(app).model_copy(update=settings), clock.now()
    )
    assert report.ran
    return report


async def count(app: FastAPI, model: Any, *where: Any) -> int:
    async with app_parts.database(app).sessions() as session:
        found = await session.scalar(select(func.count()).select_from(model).where(*where))
        return int(found or 0)


async def audit_about(app: FastAPI, licence_id: str) -> int:
    about = (AuditEntry.target_id == licence_id) | (
        AuditEntry.detail["licence_id"].as_string() == licence_id
    )
    return await count(app, AuditEntry, about)


async def held_about(app: FastAPI, licence_id: str) -> dict[str, int]:
    licence = uuid.UUID(licence_id)
    return {
        "licences": await count(app, Licence, Licence.id == licence),
        "machines": await count(app, Machine, Machine.licence_id == licence),
        "pings": await count(app, pings, pings.c.licence_id == licence),
        "reports": await count(app, AbuseReport, AbuseReport.licence_id == licence),
        "events": await count(app, AbuseReportEvent, AbuseReportEvent.licence_id == licence),
        "audit": await audit_about(app, licence_id),
    }


async def test_an_ended_licence_is_erased_whole_after_the_licence_retention(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock, admin_headers: dict[str, str]
) -> None:
    start = clock.now()
    expiring = await create_licence(
        client, app, expires_at=(start + dt.timedelta(days=10)).isoformat()
    )
    revoked = await create_licence(client, app)
    lasting = await create_licence(client, app)
    for licence in (expiring, revoked, lasting):
        await ping(app, licence["key"], "pc-1")
        report = await make_report(app, licence["id"], ReportKind.MACHINES_OVER_LIMIT, figure=3)
        changed = await client.patch(
            f"{REPORTS}/{report.id}",
            json={"status": "acknowledged", "note": "customer called"},
            headers=admin_headers,
        )
        assert changed.status_code == 200, changed.text
    response = await client.patch(
        f"{LICENCES}/{revoked['id']}", json={"status": "revoked"}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert (await held_about(app, revoked["id"]))["audit"] >= 2

    # Six years after the revocation, less a day: everything is kept.
    clock.current = start + dt.timedelta(days=2190 - 1)
    report = await maintain(app, clock, ping_retention_days=10_000, machine_retention_days=10_000)
    assert report.licences_erased == 0
    assert (await held_about(app, revoked["id"]))["licences"] == 1

    clock.current = start + dt.timedelta(days=2190, hours=1)
    report = await maintain(app, clock, ping_retention_days=10_000, machine_retention_days=10_000)
    assert report.licences_erased == 1
    assert set((await held_about(app, revoked["id"])).values()) == {0}
    assert (await held_about(app, expiring["id"]))["licences"] == 1

    clock.current = start + dt.timedelta(days=2190 + 10, hours=1)
    report = await maintain(app, clock, ping_retention_days=10_000, machine_retention_days=10_000)
    assert report.licences_erased == 1
    assert set((await held_about(app, expiring["id"])).values()) == {0}
    kept = await held_about(app, lasting["id"])
    assert kept["licences"] == kept["reports"] == 1 and kept["pings"] == 1


async def test_closed_reports_audit_entries_and_ended_tokens_expire(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock, admin_headers: dict[str, str]
) -> None:
    start = clock.now()
    licence = await create_licence(client, app)
    closed = await make_report(app, licence["id"], ReportKind.MACHINES_OVER_LIMIT, figure=3)
    still_open = await make_report(app, licence["id"], ReportKind.USERS_OVER_LIMIT, figure=30)
    response = await client.patch(
        f"{REPORTS}/{closed.id}",
        json={"status": "dismissed", "note": "a test"},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    async with app_parts.database(app).sessions() as session, session.begin():
        revoked = await auth.create_token(session, name="left", scopes=[], now=start)
        await auth.create_token(
            session, name="temp", scopes=[], now=start, expires_at=start + dt.timedelta(days=1)
        )
        await auth.create_token(session, name="stays", scopes=[], now=start)
        await auth.revoke_token(session, revoked.token.id, start)
    audit_entries = await count(app, AuditEntry)
    assert audit_entries >= 2

    clock.current = start + dt.timedelta(days=30, hours=1)
    report = await maintain(
        app,
        clock,
        closed_report_retention_days=30,
        audit_retention_days=31,
        staff_token_retention_days=29,
    )
    assert report.closed_reports_expired == 1
    assert await count(app, AbuseReport) == 1
    assert await count(app, AbuseReportEvent, AbuseReportEvent.report_id == closed.id) == 0
    assert await count(app, AbuseReport, AbuseReport.id == still_open.id) == 1
    assert report.staff_tokens_expired == 2
    # The tokens the fixtures made live on, with the one that was never revoked.
    assert [token.name for token in await tokens(app)] == ["admin", "maker", "stays"]
    assert report.audit_entries_expired == 0

    clock.current = start + dt.timedelta(days=31, hours=1)
    report = await maintain(app, clock, audit_retention_days=31)
    assert report.audit_entries_expired == audit_entries
    assert await count(app, AuditEntry) == 0


async def tokens(app: FastAPI) -> list[StaffToken]:
    async with app_parts.database(app).sessions() as session:
        return list(await session.scalars(select(StaffToken).order_by(StaffToken.name)))


async def test_an_ended_licence_is_erased_whole_with_its_customer_side(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    """Its offline seat, its key holder's erasure request and /my/ session go with it."""
    start = clock.now()
    ending = await create_licence(
        client, app, expires_at=(start + dt.timedelta(days=10)).isoformat()
    )
    issued = await issue_file(client, app, activation_request(ending["key"]))
    assert issued.status_code == 200, issued.text
    licence_id = uuid.UUID(ending["id"])
    # A session that never ends by itself, so only the licence's erasure can remove it.
    lasting = app_parts.settings(app).model_copy(
        update={"customer_session_idle_s": 10**9, "customer_session_lifetime_s": 10**9}
    )
    async with app_parts.database(app).sessions() as session, session.begin():
        await account.start_session(session, licence_id, lasting, start)
        assert await requests.request_erasure(session, licence_id, start)

    async def customer_side() -> dict[str, int]:
        return {
            "offline seats": await count(
                app, Machine, Machine.licence_id == licence_id, Machine.offline_until.is_not(None)
            ),
            "sessions": await count(app, CustomerSession, CustomerSession.licence_id == licence_id),
            "requests": await count(app, ErasureRequest, ErasureRequest.licence_id == licence_id),
        }

    assert await customer_side() == {"offline seats": 1, "sessions": 1, "requests": 1}
    clock.current = start + dt.timedelta(days=2190 + 10, hours=1)
    report = await maintain(app, clock, customer_session_idle_s=10**9)
    assert report.licences_erased == 1 and report.sessions_expired == 0
    assert await customer_side() == {"offline seats": 0, "sessions": 0, "requests": 0}
    assert set((await held_about(app, ending["id"])).values()) == {0}


async def test_ended_browser_sessions_expire_unused(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    """A /my/ session past its lifetime goes at the next run, though nobody signs in again."""
    licence = await create_licence(client, app)
    settings = app_parts.settings(app)
    async with app_parts.database(app).sessions() as session, session.begin():
        await account.start_session(session, uuid.UUID(licence["id"]), settings, clock.now())
    report = await maintain(app, clock)
    assert report.sessions_expired == 0 and await count(app, CustomerSession) == 1

    clock.advance(seconds=settings.customer_session_lifetime_s)
    report = await maintain(app, clock, customer_session_idle_s=10**9)
    assert report.sessions_expired == 1 and await count(app, CustomerSession) == 0
    assert await count(app, Licence, Licence.id == uuid.UUID(licence["id"])) == 1
