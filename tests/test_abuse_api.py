"""The abuse-report staff API: lifecycle, notes, filters, stable pages, CSV, scopes, bad input."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.abuse.models import AbuseReportEvent, ReportKind
from app.core import auth
from app.core.audit import AuditEntry
from tests.support import app_parts
from tests.support.abuse import REPORTS, detect, make_report, stored_reports
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import ping
from tests.support.tokens import staff_headers

KINDS = list(ReportKind)


async def headers_with(app: FastAPI, *scopes: auth.Scope) -> dict[str, str]:
    return await staff_headers(app, *scopes, name="support-ann")


async def all_pages(
    http: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await http.get(REPORTS, params=query, headers=headers)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def test_lifecycle_with_notes_and_audit(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1)
    await ping(app, licence["key"], "pc-1")
    await ping(app, licence["key"], "pc-2")
    await detect(app)
    [report] = await stored_reports(app)
    writer = await headers_with(app, auth.Scope.REPORTS_READ, auth.Scope.REPORTS_WRITE)
    url = f"{REPORTS}/{report.id}"

    shown = (await client.get(url, headers=writer)).json()
    assert shown["status"] == "open"
    assert shown["product"] == "mail"
    assert [len(m["machine"]) for m in shown["evidence"]["machines"]] == [12, 12]
    assert [event["to_status"] for event in shown["events"]] == ["open"]

    clock.advance(minutes=1)
    acked = await client.patch(
        url, json={"status": "acknowledged", "note": "Mailed the customer"}, headers=writer
    )
    assert acked.status_code == 200, acked.text
    noted = await client.patch(url, json={"note": "  Customer says a test box  "}, headers=writer)
    assert noted.json()["status"] == "acknowledged"
    closed = await client.patch(
        url, json={"status": "dismissed", "note": "Test box, fine"}, headers=writer
    )
    body = closed.json()
    assert body["status"] == "dismissed"
    assert body["closed_at"] is not None
    assert [(e["from_status"], e["to_status"], e["note"], e["actor"]) for e in body["events"]] == [
        (None, "open", body["events"][0]["note"], "detector"),
        ("open", "acknowledged", "Mailed the customer", "support-ann"),
        ("acknowledged", "acknowledged", "Customer says a test box", "support-ann"),
        ("acknowledged", "dismissed", "Test box, fine", "support-ann"),
    ]
    again = await client.patch(url, json={"status": "open", "note": "no"}, headers=writer)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"

    async with app_parts.database(app).sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.target_id == str(report.id))
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["abuse_report.acknowledged", "abuse_report.note", "abuse_report.dismissed"]


async def test_dismissed_stays_dismissed_until_the_evidence_grows(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1)
    await ping(app, licence["key"], "pc-1")
    await ping(app, licence["key"], "pc-2")
    await detect(app)
    [report] = await stored_reports(app)
    writer = await headers_with(app, auth.Scope.REPORTS_WRITE)
    response = await client.patch(
        f"{REPORTS}/{report.id}", json={"status": "dismissed", "note": "Known"}, headers=writer
    )
    assert response.status_code == 200
    clock.advance(hours=6)
    await ping(app, licence["key"], "pc-1")
    await ping(app, licence["key"], "pc-2")
    await detect(app)
    assert [r.status for r in await stored_reports(app)] == ["dismissed"]
    await ping(app, licence["key"], "pc-3")
    await detect(app)
    reports = await stored_reports(app)
    assert [(r.status, r.figure) for r in reports] == [("dismissed", 2), ("open", 3)]


async def test_filters(client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock) -> None:
    mail = await create_licence(client, app)
    fax = await create_licence(client, app, product="fax")
    await make_report(app, mail["id"], ReportKind.MACHINE_CHURN, 30, 10)
    clock.advance(days=2)
    await make_report(app, mail["id"], ReportKind.USERS_OVER_LIMIT, 30, 25)
    fax_report = await make_report(app, fax["id"], ReportKind.USERS_OVER_LIMIT, 50, 25)
    reader = await headers_with(app, auth.Scope.REPORTS_READ)

    async def ids(**params: Any) -> list[str]:
        return [item["id"] for item in await all_pages(client, reader, **params)]

    assert len(await ids()) == 3
    assert await ids(product="fax") == [str(fax_report.id)]
    assert len(await ids(kind="users_over_limit")) == 2
    assert len(await ids(licence=mail["id"])) == 2
    assert len(await ids(since=clock.now().date().isoformat())) == 2
    assert len(await ids(status="open")) == 3
    assert await ids(status="resolved") == []
    bysev = await all_pages(client, reader)
    assert [item["severity"] for item in bysev] == [100, 100, 20]
    recent = await all_pages(client, reader, sort="last_seen")
    assert recent[-1]["kind"] == "machine_churn"


async def test_pages_are_stable_while_new_reports_arrive(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licences = [await create_licence(client, app) for _ in range(6)]
    for n, licence in enumerate(licences):
        for kind in KINDS:
            await make_report(app, licence["id"], kind, figure=2 + n, allowed=2)
    reader = await headers_with(app, auth.Scope.REPORTS_READ)
    for sort in ("severity", "last_seen"):
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 5, "sort": sort, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(REPORTS, params=params, headers=reader)).json()
            seen += [item["id"] for item in page["items"]]
            # Newcomers rank above everyone: they must not push old ones into the next page.
            newcomer = await create_licence(client, app)
            await make_report(app, newcomer["id"], ReportKind.MACHINES_OVER_LIMIT, 9, 1)
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen))
        assert len([i for i in seen]) >= 24


async def test_csv_export(client: httpx.AsyncClient, app: FastAPI) -> None:
    licence = await create_licence(client, app, max_machines=1)
    await ping(app, licence["key"], "pc-1")
    await ping(app, licence["key"], "pc-2")
    await detect(app)
    other = await create_licence(client, app, product="fax")
    await make_report(app, other["id"], ReportKind.USERS_OVER_LIMIT, 30, 25)
    reader = await headers_with(app, auth.Scope.REPORTS_READ)
    response = await client.get(f"{REPORTS}/export", params={"product": "mail"}, headers=reader)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    [row] = rows
    assert row["licence_id"] == licence["id"]
    assert row["kind"] == "machines_over_limit"
    assert (row["figure"], row["allowed"], row["severity"]) == ("2", "1", "100")
    assert row["key_last4"] == licence["key_last4"]
    assert len(row["machines"].split()) == 2
    everything = await client.get(f"{REPORTS}/export", headers=reader)
    assert len(list(csv.DictReader(io.StringIO(everything.text)))) == 2


async def test_scopes(client: httpx.AsyncClient, app: FastAPI) -> None:
    licence = await create_licence(client, app)
    report = await make_report(app, licence["id"], ReportKind.USERS_OVER_LIMIT, 30, 25)
    url = f"{REPORTS}/{report.id}"
    change = {"status": "acknowledged", "note": "Looking"}
    reader = await headers_with(app, auth.Scope.REPORTS_READ)
    licences_only = await headers_with(app, auth.Scope.LICENCES_READ)
    assert (await client.get(url, headers=reader)).status_code == 200
    assert (await client.patch(url, json=change, headers=reader)).status_code == 403
    assert (await client.get(REPORTS, headers=licences_only)).status_code == 403
    assert (await client.get(f"{REPORTS}/export", headers=licences_only)).status_code == 403
    for method, path in [
        ("GET", REPORTS),
        ("GET", url),
        ("PATCH", url),
        ("GET", f"{REPORTS}/export"),
    ]:
        response = await client.request(method, path, json=change if method == "PATCH" else None)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    assert [r.status for r in await stored_reports(app)] == ["open"]


@pytest.mark.parametrize(
    ("method", "path", "params", "body"),
    [
        ("GET", "", {"status": "closed"}, None),
        ("GET", "", {"kind": "nope"}, None),
        ("GET", "", {"product": "Not A Product"}, None),
        ("GET", "", {"licence": "not-a-uuid"}, None),
        ("GET", "", {"since": "yesterday"}, None),
        ("GET", "", {"sort": "name"}, None),
        ("GET", "", {"cursor": "garbage!"}, None),
        ("GET", "", {"limit": 0}, None),
        ("GET", "/export", {"kind": "nope"}, None),
        ("GET", "/{id}x", {}, None),
        ("GET", "/" + str(uuid.UUID(int=0)), {}, None),
        ("PATCH", "/{id}", {}, {"status": "acknowledged"}),
        ("PATCH", "/{id}", {}, {"status": "acknowledged", "note": "   "}),
        ("PATCH", "/{id}", {}, {"status": "acknowledged", "note": "x" * 2001}),
        ("PATCH", "/{id}", {}, {"status": "gone", "note": "x"}),
        ("PATCH", "/{id}", {}, {"status": "open", "note": "x"}),
        ("PATCH", "/{id}", {}, {"note": "x", "extra": 1}),
        ("PATCH", "/" + str(uuid.UUID(int=0)), {}, {"note": "x"}),
    ],
)
async def test_bad_input_changes_nothing(
    client: httpx.AsyncClient,
    app: FastAPI,
    method: str,
    path: str,
    params: dict[str, Any],
    body: dict[str, Any] | None,
) -> None:
    licence = await create_licence(client, app)
    report = await make_report(app, licence["id"], ReportKind.USERS_OVER_LIMIT, 30, 25)
    headers = await headers_with(app, auth.Scope.REPORTS_READ, auth.Scope.REPORTS_WRITE)
    response = await client.request(
        method, REPORTS + path.format(id=report.id), params=params, json=body, headers=headers
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [stored] = await stored_reports(app)
    assert stored.status == "open"
    async with app_parts.database(app).sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AbuseReportEvent)) == 1
