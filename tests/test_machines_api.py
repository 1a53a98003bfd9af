"""A licence's machines in its detail, and retiring one: it stops counting at once."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.core import auth
from app.core.audit import AuditEntry
from app.licences.models import Machine
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import ping, this_machine
from tests.support.tokens import staff_headers

LICENCES = "/v1/admin/licences"


async def staff(app: FastAPI) -> dict[str, str]:
    return await staff_headers(app, auth.Scope.LICENCES_READ, auth.Scope.LICENCES_WRITE, name="bob")


async def test_licence_detail_lists_its_machines(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1, overage="deny")
    await ping(app, licence["key"], "pc-1", user_count=7, version="8.0.0")
    clock.advance(hours=1)
    await ping(app, licence["key"], "pc-2", user_count=3)
    detail = (await client.get(f"{LICENCES}/{licence['id']}", headers=await staff(app))).json()
    assert detail["machines_total"] == 2
    newest, oldest = detail["machines"]
    assert (newest["seat"], newest["active"], newest["last_user_count"]) == ("denied", False, 3)
    assert (oldest["seat"], oldest["active"], oldest["last_version"]) == ("granted", True, "8.0.0")
    # Shortened, as staff see machine ids everywhere (docs/api.md): the export has the rest.
    assert len(oldest["machine_id"]) == 12
    clock.advance(days=7)
    later = (await client.get(f"{LICENCES}/{licence['id']}", headers=await staff(app))).json()
    assert [machine["active"] for machine in later["machines"]] == [False, False]


async def test_retiring_frees_the_seat_at_once_and_is_audited(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_machines=1, overage="deny")
    await ping(app, licence["key"], "old-pc")
    refused = await ping(app, licence["key"], "new-pc")
    assert refused["licence"]["machines"]["seat"] == "denied"
    headers = await staff(app)
    detail = (await client.get(f"{LICENCES}/{licence['id']}", headers=headers)).json()
    old = next(m for m in detail["machines"] if m["seat"] == "granted")
    response = await client.delete(
        f"{LICENCES}/{licence['id']}/machines/{old['machine_id'][:12]}", headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["retired_at"] is not None
    assert response.json()["active"] is False
    admitted = await ping(app, licence["key"], "new-pc")
    assert admitted["licence"]["machines"] == {
        "allowed": 1,
        "active": 1,
        "over_limit": False,
        "seat": "granted",
        "this_machine": this_machine(app, licence["id"], "new-pc"),
        "floating": False,
    }
    again = await client.delete(
        f"{LICENCES}/{licence['id']}/machines/{old['machine_id']}", headers=headers
    )
    assert again.status_code == 200
    async with app_parts.database(app).sessions() as session:
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "machine.retire"))
        )
    assert [(e.actor, e.target_id, e.detail) for e in entries] == [
        ("bob", licence["id"], {"machine": old["machine_id"][:12]})
    ]


async def test_retire_needs_licences_write_and_a_token(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app)
    await ping(app, licence["key"], "pc-1")
    reader = await staff_headers(app, auth.Scope.LICENCES_READ, auth.Scope.REPORTS_WRITE)
    detail = (await client.get(f"{LICENCES}/{licence['id']}", headers=reader)).json()
    url = f"{LICENCES}/{licence['id']}/machines/{detail['machines'][0]['machine_id']}"
    assert (await client.delete(url, headers=reader)).status_code == 403
    assert (await client.delete(url)).status_code == 401
    await retired_count(app, 0)


async def retired_count(app: FastAPI, expected: int) -> None:
    async with app_parts.database(app).sessions() as session:
        retired = list(
            await session.scalars(select(Machine).where(Machine.retired_at.is_not(None)))
        )
    assert len(retired) == expected


@pytest.mark.parametrize(
    ("licence_part", "machine_part", "status"),
    [
        ("{licence}", "abc", 422),  # too short to name a machine
        ("{licence}", "ABCDEF0123456789", 422),  # not lower-case hex
        ("{licence}", "0123456789ab%25", 422),
        ("{licence}", "0123456789ab", 404),
        ("not-a-uuid", "0123456789ab", 422),
        ("00000000-0000-0000-0000-000000000000", "{machine}", 404),
    ],
)
async def test_bad_retire_requests_change_nothing(
    client: httpx.AsyncClient, app: FastAPI, licence_part: str, machine_part: str, status: int
) -> None:
    licence = await create_licence(client, app)
    await ping(app, licence["key"], "pc-1")
    headers = await staff(app)
    detail = (await client.get(f"{LICENCES}/{licence['id']}", headers=headers)).json()
    fill = {"licence": licence["id"], "machine": detail["machines"][0]["machine_id"]}
    url = f"{LICENCES}/{licence_part.format(**fill)}/machines/{machine_part.format(**fill)}"
    response = await client.delete(url, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    await retired_count(app, 0)
