"""Publishing signature sets, and the ping's `signatures` plan that follows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.releases.models import FeedDelta, FeedVersion
from tests.support import app_parts
from tests.support.licences import create_licence
from tests.support.pings import ping_body, send_ping
from tests.support.releases import SET_SHA256, publish_set, set_body


async def test_the_ping_plans_deltas_and_full_sets_for_entitled_feeds(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(client, app, entitlements=["spam"])
    await publish_set(client, admin_headers, "spam", set_body(41))
    published = await publish_set(client, admin_headers, "spam", set_body(42, 41))
    assert published["deltas"][0]["from"] == 41
    await publish_set(client, admin_headers, "antivirus", set_body(7))

    answer = await send_ping(
        client, app, ping_body(licence["key"], signatures={"spam": 41, "antivirus": 1})
    )
    assert answer["signatures"] == {
        "spam": {
            "version": 42,
            "url": "https://dl.example.com/spam-42",
            "sha256": SET_SHA256,
            "size": 9000,
            "delta": {
                "from": 41,
                "url": "https://dl.example.com/spam-41-42",
                "sha256": SET_SHA256,
                "size": 90,
            },
            "chain": [
                {
                    "from": 41,
                    "to": 42,
                    "url": "https://dl.example.com/spam-41-42",
                    "sha256": SET_SHA256,
                    "size": 90,
                }
            ],
        }
    }
    behind = await send_ping(client, app, ping_body(licence["key"], signatures={"spam": 12}))
    assert behind["signatures"]["spam"]["delta"] is None
    assert behind["signatures"]["spam"]["chain"] == []
    current = await send_ping(client, app, ping_body(licence["key"], signatures={"spam": 42}))
    assert current["signatures"] == {}


async def test_a_lapsed_entitlement_stops_the_feed_and_nothing_else(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(client, app, entitlements=["spam"])
    await publish_set(client, admin_headers, "spam", set_body(2))
    response = await client.post(
        "/v1/admin/releases",
        json={
            "product": "mail",
            "version": "9.0",
            "url": "https://dl.example.com/9.0",
            "sha256": SET_SHA256,
            "size": 1,
        },
        headers=admin_headers,
    )
    assert response.status_code == 201
    body = ping_body(licence["key"], signatures={"spam": 1})
    assert set((await send_ping(client, app, body))["signatures"]) == {"spam"}
    changed = await client.patch(
        f"/v1/admin/licences/{licence['id']}", json={"entitlements": []}, headers=admin_headers
    )
    assert changed.status_code == 200
    answer = await send_ping(client, app, ping_body(licence["key"], signatures={"spam": 1}))
    assert answer["signatures"] == {}
    assert answer["update"]["version"] == "9.0"


async def test_a_product_too_old_for_the_newest_set(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(client, app, entitlements=["spam"])
    await publish_set(client, admin_headers, "spam", set_body(5))
    await publish_set(client, admin_headers, "spam", set_body(6, min_product_version="9.0"))
    old = await send_ping(
        client, app, ping_body(licence["key"], version="8.2", signatures={"spam": 4})
    )
    assert old["signatures"]["spam"]["version"] == 5
    stuck = await send_ping(
        client, app, ping_body(licence["key"], version="8.2", signatures={"spam": 5})
    )
    assert stuck["signatures"] == {}
    new = await send_ping(
        client, app, ping_body(licence["key"], version="9.1", signatures={"spam": 5})
    )
    assert new["signatures"]["spam"]["version"] == 6


async def test_feed_lists_and_duplicates(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    for version in (1, 2, 3):
        await publish_set(client, admin_headers, "spam", set_body(version, *range(1, version)))
    await publish_set(client, admin_headers, "antivirus", set_body(10))
    again = await client.post(
        "/v1/admin/feeds/spam/versions", json=set_body(2), headers=admin_headers
    )
    assert again.status_code == 409
    feeds = (await client.get("/v1/admin/feeds", headers=admin_headers)).json()
    assert feeds["items"] == [
        {"feed": "antivirus", "latest_version": 10, "versions": 1},
        {"feed": "spam", "latest_version": 3, "versions": 3},
    ]
    first = (
        await client.get("/v1/admin/feeds/spam/versions?limit=2", headers=admin_headers)
    ).json()
    assert [item["version"] for item in first["items"]] == [3, 2]
    assert [delta["from"] for delta in first["items"][0]["deltas"]] == [1, 2]
    rest = (
        await client.get(
            "/v1/admin/feeds/spam/versions",
            params={"cursor": first["next_cursor"]},
            headers=admin_headers,
        )
    ).json()
    assert [item["version"] for item in rest["items"]] == [1]
    assert rest["next_cursor"] is None


BAD_SETS = [
    set_body(0),
    set_body(-3),
    set_body("7"),  # type: ignore[arg-type]
    set_body(7, size=-1),
    set_body(7, sha256="abc"),
    set_body(7, url="not a url"),
    set_body(7, min_product_version="latest"),
    set_body(7, 7),
    set_body(7, 9),
    set_body(7, 3, 3),
    {**set_body(7), "deltas": [{"from": 3, "url": "https://x.example.com", "sha256": SET_SHA256}]},
    {**set_body(7), "deltas": [{"from": 3, "url": "https://x", "sha256": SET_SHA256, "size": -1}]},
    set_body(7, signed_by="someone@example.com"),
    {"version": 7},
]


@pytest.mark.parametrize("body", BAD_SETS, ids=range(len(BAD_SETS)))
async def test_bad_sets_are_refused_and_write_nothing(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str], body: Any
) -> None:
    response = await client.post("/v1/admin/feeds/spam/versions", json=body, headers=admin_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "someone@example.com" not in response.text
    bad_name = await client.post(
        "/v1/admin/feeds/Spam Feed/versions", json=set_body(7), headers=admin_headers
    )
    assert bad_name.status_code == 422
    long_name = await client.post(
        f"/v1/admin/feeds/{'s' * 33}/versions", json=set_body(7), headers=admin_headers
    )
    assert long_name.status_code == 422
    async with app_parts.database(app).sessions() as session:
        for model in (FeedVersion, FeedDelta):
            assert await session.scalar(select(func.count()).select_from(model)) == 0
