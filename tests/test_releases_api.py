"""Publishing releases through the staff API, and the ping's `update` that follows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core import auth
from app.core.audit import AuditEntry
from app.releases.models import FeedVersion, Release
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import ping_body, send_ping
from tests.support.releases import RELEASE_SHA256, RELEASES, publish_release, release_body
from tests.support.tokens import staff_headers


async def count(app: FastAPI, model: Any) -> int:
    async with app_parts.database(app).sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_published_release_reaches_the_next_ping(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(client, app)
    before = await send_ping(client, app, ping_body(licence["key"], version="8.2.1"))
    assert before["update"] is None
    published = await publish_release(
        client, admin_headers, "8.10.0", critical=True, notes_url="https://n.example.com/8.10"
    )
    assert published["rollout_percent"] == 100 and published["channel"] == "stable"
    answer = await send_ping(client, app, ping_body(licence["key"], version="8.2.1"))
    assert answer["update"] == {
        "version": "8.10.0",
        "url": "https://dl.example.com/mail-8.10.0.tar.gz",
        "sha256": RELEASE_SHA256,
        "size": 123_456,
        "notes_url": "https://n.example.com/8.10",
        "critical": True,
    }
    current = await send_ping(client, app, ping_body(licence["key"], version="8.10"))
    assert current["update"] is None
    beta = await send_ping(client, app, ping_body(licence["key"], version="8.2.1", channel="beta"))
    assert beta["update"] is None


async def test_no_update_for_unknown_or_invalid_licences(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    await publish_release(client, admin_headers, "9.0")
    unknown = await send_ping(client, app, ping_body("NO-SUCH-LICENCE-KEY"))
    assert unknown["update"] is None and unknown["signatures"] == {}
    licence = await create_licence(client, app, expires_at="2020-01-01")
    expired = await send_ping(client, app, ping_body(licence["key"]))
    assert expired["licence"]["status"] == "expired"
    assert expired["update"] is None


async def test_maintenance_cut_off_on_the_release_day(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    covered = await create_licence(client, app, updates_until="2026-03-01")
    lapsed = await create_licence(client, app, updates_until="2026-02-28")
    await publish_release(client, admin_headers, "9.0", published_at="2026-03-01T23:59:00Z")
    on_the_day = await send_ping(client, app, ping_body(covered["key"]))
    assert on_the_day["update"]["version"] == "9.0"
    day_after = await send_ping(client, app, ping_body(lapsed["key"]))
    assert day_after["update"] is None


async def test_rollout_halt_and_yank_reach_pings_at_once(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(client, app, max_machines=100)
    staged = await publish_release(client, admin_headers, "9.0", rollout_percent=50)
    machines = [f"pc-{n}" for n in range(24)]

    async def offered() -> set[str]:
        answers = [
            await send_ping(client, app, ping_body(licence["key"], machine=machine))
            for machine in machines
        ]
        return {m for m, a in zip(machines, answers, strict=True) if a["update"] is not None}

    at_50 = await offered()
    assert 0 < len(at_50) < len(machines)
    url = f"{RELEASES}/{staged['id']}"
    grown = await client.patch(url, json={"rollout_percent": 90}, headers=admin_headers)
    assert grown.status_code == 200 and grown.json()["rollout_percent"] == 90
    assert at_50 <= await offered()
    halted = await client.patch(url, json={"halt": True}, headers=admin_headers)
    assert halted.json()["rollout_percent"] == 0
    assert await offered() == set()
    await client.patch(url, json={"rollout_percent": 100}, headers=admin_headers)
    assert await offered() == set(machines)
    yanked = await client.patch(url, json={"yank": True}, headers=admin_headers)
    assert yanked.json()["yanked_at"] is not None
    assert await offered() == set()
    again = await client.patch(url, json={"rollout_percent": 100}, headers=admin_headers)
    assert again.status_code == 409
    async with app_parts.database(app).sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert [a for a in actions if a.startswith("release.")] == [
        "release.publish",
        "release.change",
        "release.change",
        "release.change",
        "release.yank",
    ]


async def test_duplicates_conflict_compared_as_versions(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    await publish_release(client, admin_headers, "8.1")
    for version in ("8.1", "8.1.0", "v8.1"):
        again = await client.post(RELEASES, json=release_body(version), headers=admin_headers)
        assert again.status_code == 409, version
        assert again.headers["content-type"] == "application/problem+json"
    await publish_release(client, admin_headers, "8.1", channel="beta")
    await publish_release(client, admin_headers, "8.1", product="fax")
    assert await count(app, Release) == 3


async def test_list_filters_and_pages(
    client: httpx.AsyncClient, admin_headers: dict[str, str], clock: FrozenClock
) -> None:
    made = []
    for n in range(5):
        made.append((await publish_release(client, admin_headers, f"8.{n}"))["id"])
        clock.advance(seconds=1)
    await publish_release(client, admin_headers, "1.0", product="fax", channel="beta")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "product": "mail"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(RELEASES, params=params, headers=admin_headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]
    beta = await client.get(RELEASES, params={"channel": "beta"}, headers=admin_headers)
    assert [item["product"] for item in beta.json()["items"]] == ["fax"]


async def test_scopes_guard_publishing(client: httpx.AsyncClient, app: FastAPI) -> None:
    reader = await staff_headers(app, auth.Scope.LICENCES_READ)
    assert (await client.post(RELEASES, json=release_body("9.0"))).status_code == 401
    denied = await client.post(RELEASES, json=release_body("9.0"), headers=reader)
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
    assert (await client.get(RELEASES, headers=reader)).status_code == 403
    assert (await client.get("/v1/admin/feeds", headers=reader)).status_code == 403
    feed = await client.post(
        "/v1/admin/feeds/spam/versions",
        json={"version": 1, "url": "https://x.example.com/1", "sha256": RELEASE_SHA256, "size": 1},
        headers=reader,
    )
    assert feed.status_code == 403
    assert await count(app, Release) == 0
    assert await count(app, FeedVersion) == 0


BAD_RELEASES = [
    release_body("not a version"),
    release_body("banana"),
    release_body("8" * 33),
    release_body("8.1", sha256="XYZ"),
    release_body("8.1", sha256=RELEASE_SHA256.upper()),
    release_body("8.1", size=-1),
    release_body("8.1", size="big"),
    release_body("8.1", size=1.5),
    release_body("8.1", url="ftp://dl.example.com/x"),
    release_body("8.1", url="https://" + "x" * 3000),
    release_body("8.1", product="Mail Server"),
    release_body("8.1", channel="x" * 17),
    release_body("8.1", rollout_percent=101),
    release_body("8.1", rollout_percent=-1),
    release_body("8.1", min_from_version="old"),
    release_body("8.1", critical="very"),
    release_body("8.1", customer_email="someone@example.com"),
    {"product": "mail", "version": "8.1"},
    [],
]


@pytest.mark.parametrize("body", BAD_RELEASES, ids=range(len(BAD_RELEASES)))
async def test_bad_releases_are_refused_and_write_nothing(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str], body: Any
) -> None:
    response = await client.post(RELEASES, json=body, headers=admin_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "someone@example.com" not in response.text
    assert await count(app, Release) == 0
    assert await count(app, AuditEntry) == 0


async def test_bad_patches_and_paths(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    published = await publish_release(client, admin_headers, "8.1", rollout_percent=20)
    url = f"{RELEASES}/{published['id']}"
    for body in (
        {"rollout_percent": 101},
        {"rollout_percent": "all"},
        {"rollout_percent": None},
        {"halt": False},
        {"yank": False},
        {"halt": True, "rollout_percent": 50},
        {"version": "9.0"},
    ):
        response = await client.patch(url, json=body, headers=admin_headers)
        assert response.status_code == 422, body
    listed = (await client.get(RELEASES, headers=admin_headers)).json()["items"]
    assert listed[0]["rollout_percent"] == 20 and listed[0]["updated_at"] == published["updated_at"]
    missing = await client.patch(
        f"{RELEASES}/00000000-0000-0000-0000-000000000000",
        json={"halt": True},
        headers=admin_headers,
    )
    assert missing.status_code == 404
    assert (
        await client.patch(f"{RELEASES}/nope", json={}, headers=admin_headers)
    ).status_code == 422
    for params in ({"cursor": "garbage"}, {"limit": 1000}, {"product": "Mail!"}):
        assert (await client.get(RELEASES, params=params, headers=admin_headers)).status_code == 422
