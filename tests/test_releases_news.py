"""GET /v1/updates/{product} and /v1/feeds/{feed}: signed, ETag/304, licence key required."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from fastapi import FastAPI

from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import verify_signature
from tests.support.releases import publish_release, publish_set, set_body


def licence_header(key: str) -> dict[str, str]:
    return {"Authorization": f"Licence {key}"}


def epoch_window(
    clock: FrozenClock, epoch_s: int = 3600, validity_s: int = 86400
) -> dict[str, str]:
    issued_at = dt.datetime.fromtimestamp(int(clock.now().timestamp()) // epoch_s * epoch_s, dt.UTC)
    expires_at = issued_at + dt.timedelta(seconds=validity_s)
    return {"issued_at": rfc3339(issued_at), "expires_at": rfc3339(expires_at)}


def rfc3339(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_update_news_is_signed_and_revalidates_with_its_etag(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str], clock: FrozenClock
) -> None:
    licence = await create_licence(client, app)
    headers = licence_header(licence["key"])
    url = "/v1/updates/mail"
    nothing = await client.get(url, params={"version": "8.0"}, headers=headers)
    assert nothing.status_code == 200
    assert verify_signature(app, nothing) == {
        **epoch_window(clock),
        "product": "mail",
        "channel": "stable",
        "version": "8.0",
        "update": None,
    }
    etag = nothing.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    unchanged = await client.get(
        url, params={"version": "8.0"}, headers={**headers, "If-None-Match": etag}
    )
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["ETag"] == etag

    await publish_release(client, admin_headers, "8.1")
    await publish_release(client, admin_headers, "8.2", rollout_percent=50)
    news = await client.get(
        url, params={"version": "8.0"}, headers={**headers, "If-None-Match": etag}
    )
    assert news.status_code == 200
    assert news.headers["ETag"] != etag
    # Without a machine to place in a rollout, only complete rollouts are offered.
    assert verify_signature(app, news)["update"]["version"] == "8.1"
    again = await client.get(
        url, params={"version": "8.0"}, headers={**headers, "If-None-Match": news.headers["ETag"]}
    )
    assert again.status_code == 304
    assert licence["key"] not in news.text


async def test_news_are_reissued_each_epoch_and_keep_their_etag_within_it(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    clock.current = dt.datetime(2026, 11, 23, 12, 0, 5, tzinfo=dt.UTC)
    licence = await create_licence(client, app)
    headers = licence_header(licence["key"])
    first = await client.get("/v1/updates/mail", params={"version": "8.0"}, headers=headers)
    answer = verify_signature(app, first)
    assert answer["issued_at"] == "2026-11-23T12:00:00Z"
    assert answer["expires_at"] == "2026-11-24T12:00:00Z"
    clock.advance(minutes=59)
    etag = first.headers["ETag"]
    same_epoch = await client.get(
        "/v1/updates/mail", params={"version": "8.0"}, headers={**headers, "If-None-Match": etag}
    )
    assert same_epoch.status_code == 304
    clock.advance(minutes=1)
    next_epoch = await client.get(
        "/v1/updates/mail", params={"version": "8.0"}, headers={**headers, "If-None-Match": etag}
    )
    assert next_epoch.status_code == 200
    assert verify_signature(app, next_epoch)["issued_at"] == "2026-11-23T13:00:00Z"


async def test_feed_news_plans_the_delta(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(client, app, entitlements=["spam"])
    headers = licence_header(licence["key"])
    await publish_set(client, admin_headers, "spam", set_body(3, 2))
    await publish_set(client, admin_headers, "spam", set_body(4, 3, min_product_version="9.0"))
    old_product = await client.get("/v1/feeds/spam", params={"version": 2}, headers=headers)
    answer = verify_signature(app, old_product)
    assert answer["signature_set"]["version"] == 3
    assert answer["signature_set"]["delta"]["from"] == 2
    new_product = await client.get(
        "/v1/feeds/spam", params={"version": 3, "product_version": "9.0"}, headers=headers
    )
    assert verify_signature(app, new_product)["signature_set"]["delta"]["from"] == 3
    etag = new_product.headers["ETag"]
    cached = await client.get(
        "/v1/feeds/spam",
        params={"version": 3, "product_version": "9.0"},
        headers={**headers, "If-None-Match": f'W/{etag}, "other"'},
    )
    assert cached.status_code == 304
    not_entitled = await client.get("/v1/feeds/antivirus", params={"version": 1}, headers=headers)
    assert not_entitled.status_code == 403
    assert not_entitled.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "authorization",
    [None, "Licence NO-SUCH-LICENCE", "Bearer {key}", "Licence", "licence {key}", "{key}"],
)
async def test_news_needs_a_valid_licence_key_of_the_product(
    client: httpx.AsyncClient, app: FastAPI, authorization: str | None
) -> None:
    licence = await create_licence(client, app, entitlements=["spam"])
    headers = {"Authorization": authorization.format(key=licence["key"])} if authorization else {}
    for url, params in (
        ("/v1/updates/mail", {"version": "8.0"}),
        ("/v1/feeds/spam", {"version": 1}),
    ):
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 401, (url, authorization)
        assert response.headers["content-type"] == "application/problem+json"
        assert licence["key"] not in response.text
        assert "Callhome-Signature" not in response.headers


async def test_news_refuses_other_products_and_invalid_licences(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    fax = await create_licence(client, app, product="fax")
    wrong = await client.get(
        "/v1/updates/mail", params={"version": "8.0"}, headers=licence_header(fax["key"])
    )
    assert wrong.status_code == 401
    expired = await create_licence(client, app, expires_at="2020-01-01")
    lapsed = await client.get(
        "/v1/updates/mail", params={"version": "8.0"}, headers=licence_header(expired["key"])
    )
    assert lapsed.status_code == 401


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/v1/updates/mail", {}),
        ("/v1/updates/mail", {"version": "8.0 beta"}),
        ("/v1/updates/mail", {"version": "8" * 33}),
        ("/v1/updates/mail", {"version": "8.0", "channel": "Beta!"}),
        ("/v1/updates/Mail!", {"version": "8.0"}),
        ("/v1/feeds/spam", {}),
        ("/v1/feeds/spam", {"version": "latest"}),
        ("/v1/feeds/spam", {"version": -1}),
        ("/v1/feeds/spam", {"version": 1, "product_version": "x y"}),
        ("/v1/feeds/" + "s" * 33, {"version": 1}),
    ],
)
async def test_news_refuses_bad_input(
    client: httpx.AsyncClient, app: FastAPI, url: str, params: dict[str, object]
) -> None:
    licence = await create_licence(client, app, entitlements=["spam"])
    response = await client.get(url, params=params, headers=licence_header(licence["key"]))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
