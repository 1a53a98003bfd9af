"""Cursors the server did not make are refused with 422 on every list route, API and pages."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core import auth
from tests.support.licences import create_licence
from tests.support.tokens import issue_token

ORIGIN = "https://callhome.test"
API_LISTS = (
    "/v1/admin/licences",
    "/v1/admin/abuse-reports",
    "/v1/admin/abuse-reports?sort=last_seen",
    "/v1/admin/abuse-reports/export",
    "/v1/admin/releases",
    "/v1/admin/audit-log",
    "/v1/admin/feeds/malware/versions",
)
PAGE_LISTS = ("/staff/licences", "/staff/reports", "/staff/reports?sort=last_seen")
UUID_TEXT = "0b5e7a3c-94c4-4d7e-9b53-3c7e2e1f0a11"

# What the probing tried, in every position a cursor has.
CRAFTED_FIELDS = st.one_of(
    st.just("2024-05-01T12:00:00"),  # naive
    st.just("9999-12-31T23:59:59-05:00"),  # past year 9999 in UTC
    st.just("0001-01-01T00:00:00+05:00"),  # before year 1 in UTC
    st.just(UUID_TEXT),
    st.just("severity"),
    st.just("last_seen"),
    st.sampled_from([1e30, 2**63, 2**31, -1, True, False, None, 0, 7]),
    st.datetimes(timezones=st.timezones() | st.none()).map(lambda moment: moment.isoformat()),
    st.uuids().map(str),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
CURSOR_DOCUMENTS = st.one_of(
    st.lists(CRAFTED_FIELDS, max_size=4),
    st.dictionaries(st.text(max_size=8), CRAFTED_FIELDS, max_size=3),
    CRAFTED_FIELDS,
)


def as_cursor(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


CURSORS = st.one_of(
    CURSOR_DOCUMENTS.map(as_cursor),
    st.binary(max_size=64).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=64),
)


@pytest.fixture
async def signed_in(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """One client carrying both a staff page session and a bearer token with every scope."""
    token = await issue_token(app, *auth.Scope)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        response = await http.post(
            "/staff/sign-in", data={"token": token}, headers={"Origin": ORIGIN}
        )
        assert response.status_code == 303
        yield http, {"Authorization": f"Bearer {token}"}


def with_cursor(route: str, cursor: str) -> tuple[str, dict[str, str]]:
    path, _, query = route.partition("?")
    params = dict(part.split("=") for part in query.split("&") if part)
    return path, {**params, "cursor": cursor}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cursor=CURSORS)
@example(cursor=as_cursor(["2024-05-01T12:00:00", UUID_TEXT]))
@example(cursor=as_cursor(["9999-12-31T23:59:59-05:00", UUID_TEXT]))
@example(cursor=as_cursor(["2024-05-01T12:00:00+00:00", 12]))
@example(cursor=as_cursor([1e30]))
@example(cursor=as_cursor([2**63]))
@example(cursor=as_cursor([True]))
@example(cursor=as_cursor(["severity", 2**31, UUID_TEXT]))
@example(cursor=as_cursor(["last_seen", "2024-05-01T12:00:00", UUID_TEXT]))
async def test_any_cursor_gets_an_answer_or_a_422(
    signed_in: tuple[httpx.AsyncClient, dict[str, str]], cursor: str
) -> None:
    http, bearer = signed_in
    for route in API_LISTS:
        path, params = with_cursor(route, cursor)
        response = await http.get(path, params=params, headers=bearer)
        assert response.status_code in (200, 422), (route, response.status_code)
        if response.status_code == 422:
            assert response.headers["content-type"] == "application/problem+json"
    for route in PAGE_LISTS:
        path, params = with_cursor(route, cursor)
        response = await http.get(path, params=params)
        assert response.status_code in (200, 422), (route, response.status_code)


@pytest.mark.parametrize(
    ("route", "document"),
    [
        ("/v1/admin/licences", ["2024-05-01T12:00:00", UUID_TEXT]),
        ("/v1/admin/licences", ["9999-12-31T23:59:59-05:00", UUID_TEXT]),
        ("/v1/admin/releases", ["2024-05-01T12:00:00+00:00", 12]),
        ("/v1/admin/audit-log", [1e30]),
        ("/v1/admin/audit-log", [True]),
        ("/v1/admin/feeds/malware/versions", [2**63]),
        ("/v1/admin/feeds/malware/versions", [True]),
        ("/v1/admin/abuse-reports", ["severity", 2**31, UUID_TEXT]),
        ("/v1/admin/abuse-reports", ["severity", 3, 12]),
        ("/staff/licences", ["2024-05-01T12:00:00", UUID_TEXT]),
        ("/staff/reports", ["severity", True, UUID_TEXT]),
    ],
)
async def test_crafted_cursors_are_refused(
    signed_in: tuple[httpx.AsyncClient, dict[str, str]], route: str, document: Any
) -> None:
    http, bearer = signed_in
    response = await http.get(route, params={"cursor": as_cursor(document)}, headers=bearer)
    assert response.status_code == 422


async def test_the_server_s_own_cursors_still_page(
    signed_in: tuple[httpx.AsyncClient, dict[str, str]], app: FastAPI
) -> None:
    http, bearer = signed_in
    for _ in range(3):
        await create_licence(http, app)
    first = (await http.get("/v1/admin/licences", params={"limit": 2}, headers=bearer)).json()
    assert len(first["items"]) == 2
    rest = await http.get(
        "/v1/admin/licences", params={"limit": 2, "cursor": first["next_cursor"]}, headers=bearer
    )
    assert rest.status_code == 200
    assert len(rest.json()["items"]) == 1
