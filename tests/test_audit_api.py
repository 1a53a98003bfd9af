"""The audit log: every staff action, filtered and paged newest first, for licences:read."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.abuse.models import ReportKind
from app.core import auth
from tests.support.abuse import REPORTS, make_report
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.tokens import staff_headers

AUDIT = "/v1/admin/audit-log"


async def test_staff_actions_are_listed_newest_first(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app)
    report = await make_report(app, licence["id"], ReportKind.USERS_OVER_LIMIT, 30, 25)
    clock.advance(minutes=1)
    writer = await staff_headers(app, auth.Scope.REPORTS_WRITE, name="carol")
    await client.patch(
        f"{REPORTS}/{report.id}", json={"status": "acknowledged", "note": "On it"}, headers=writer
    )
    reader = await staff_headers(app, auth.Scope.LICENCES_READ)
    listed = (await client.get(AUDIT, headers=reader)).json()
    assert [(e["action"], e["actor"]) for e in listed["items"]] == [
        ("abuse_report.acknowledged", "carol"),
        ("licence.create", "maker"),
    ]
    by_actor = (await client.get(AUDIT, params={"actor": "maker"}, headers=reader)).json()
    assert [e["target_id"] for e in by_actor["items"]] == [licence["id"]]
    recent = await client.get(AUDIT, params={"since": clock.now().isoformat()}, headers=reader)
    assert [e["actor"] for e in recent.json()["items"]] == ["carol"]
    target = await client.get(AUDIT, params={"target_type": "licence"}, headers=reader)
    assert [e["action"] for e in target.json()["items"]] == ["licence.create"]


async def test_pages_are_stable_while_entries_arrive(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    for _ in range(7):
        await create_licence(client, app)
    reader = await staff_headers(app, auth.Scope.LICENCES_READ)
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(AUDIT, params=params, headers=reader)).json()
        seen += [entry["id"] for entry in page["items"]]
        await create_licence(client, app)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7
    assert seen == sorted(seen, reverse=True)


async def test_audit_log_needs_licences_read(client: httpx.AsyncClient, app: FastAPI) -> None:
    reports_only = await staff_headers(app, auth.Scope.REPORTS_READ)
    assert (await client.get(AUDIT, headers=reports_only)).status_code == 403
    response = await client.get(AUDIT)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "params",
    [{"since": "soon"}, {"cursor": "x"}, {"cursor": "WyJhIl0"}, {"limit": 500}, {"actor": ""}],
)
async def test_bad_filters_are_refused(
    client: httpx.AsyncClient, app: FastAPI, params: dict[str, str]
) -> None:
    reader = await staff_headers(app, auth.Scope.LICENCES_READ)
    response = await client.get(AUDIT, params=params, headers=reader)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
