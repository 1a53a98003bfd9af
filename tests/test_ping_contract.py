"""Property-based: a body that breaks the ping contract gets a 4xx and writes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.core.errors import NotFound
from app.ingest.models import pings
from app.licences.models import Machine
from app.licences.schemas import LicenceCreate
from app.licences.service import create_licence, find_by_key
from tests.support import app_parts
from tests.support.pings import JSON_HEADERS, computer_id

VALID = {
    "licence_key": "CONTRACT-TEST-KEY-1",
    "product": "mail",
    "version": "8.2.1",
    "computer_id": computer_id("pc"),
    "user_count": 3,
    "channel": "stable",
    "signatures": {"spam": 41234},
    "nonce": "n" * 24,
}

# For each field, values that lie outside its declared format.
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "licence_key": st.one_of(
        st.text(max_size=7), st.text(min_size=129, max_size=200), st.integers(), st.none(),
        st.text(min_size=8, max_size=20).map(lambda t: t + "\n\t"),
    ),
    "product": st.one_of(
        st.from_regex(r"[A-Z@ /]{1,5}", fullmatch=True), st.text(min_size=33, max_size=40),
        st.just(""), st.integers(),
    ),
    "version": st.one_of(
        st.just(""), st.text(min_size=33, max_size=50), st.just("8.2 beta"), st.just("../../x"),
        st.just("me@example.com"), st.floats(),
    ),
    "computer_id": st.one_of(
        st.text(max_size=15), st.text(min_size=129, max_size=140), st.just("C:\\Users\\anna pc"),
        st.just("anna@example.com-0123456789"), st.just("../etc/machine-id.0123456789"),
        st.integers(),
    ),
    "user_count": st.one_of(
        st.integers(max_value=-1), st.integers(min_value=10_000_001), st.floats(),
        st.just("12"), st.booleans(), st.none(),
    ),
    "channel": st.one_of(st.just("Beta Channel"), st.text(min_size=17, max_size=20), st.none()),
    "signatures": st.one_of(
        st.just({"spam": -1}), st.just({"Spam Feed": 1}), st.just({"spam": "41234"}),
        st.just([1, 2]), st.just({f"f{n}": n for n in range(17)}),
    ),
    "nonce": st.one_of(st.text(max_size=15), st.text(min_size=65, max_size=70),
                       st.just("has spaces in the nonce")),
}  # fmt: skip


@st.composite
def broken_bodies(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["bad value", "missing", "extra", "not an object"]))
    body: dict[str, Any] = dict(VALID)
    if kind == "bad value":
        field = draw(st.sampled_from(sorted(BAD_VALUES)))
        body[field] = draw(BAD_VALUES[field])
    elif kind == "missing":
        del body[draw(st.sampled_from(["licence_key", "product", "version", "computer_id",
                                       "user_count"]))]  # fmt: skip
    elif kind == "extra":
        name = draw(st.text(min_size=1, max_size=20).filter(lambda n: n not in VALID))
        body[name] = draw(st.one_of(st.text(max_size=30), st.integers(), st.just("10.1.2.3")))
    else:
        return draw(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=10),
                              st.integers()))  # fmt: skip
    return body


async def ensure_licence(app: FastAPI) -> None:
    """The licence VALID names exists, so only the breakage stands between a body and a row."""
    async with app_parts.database(app).sessions() as session, session.begin():
        try:
            await find_by_key(session, app_parts.pseudonyms(app), VALID["licence_key"])
        except NotFound:
            await create_licence(
                session,
                app_parts.pseudonyms(app),
                LicenceCreate(product="mail", key=VALID["licence_key"]),
                default_window_days=7,
                actor="test",
                now=app_parts.clock(app).now(),
            )


async def test_the_valid_body_is_stored(client: httpx.AsyncClient, app: FastAPI) -> None:
    await ensure_licence(app)
    response = await client.post("/v1/ping", content=json.dumps(VALID), headers=JSON_HEADERS)
    assert response.status_code == 200
    assert json.loads(response.content)["licence"]["status"] == "valid"
    async with app_parts.database(app).sessions() as session:
        assert await session.scalar(select(func.count()).select_from(pings)) == 1


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=broken_bodies())
async def test_broken_pings_are_refused_and_write_nothing(
    client: httpx.AsyncClient, app: FastAPI, body: Any
) -> None:
    await ensure_licence(app)
    response = await client.post("/v1/ping", content=json.dumps(body), headers=JSON_HEADERS)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "Callhome-Signature" not in response.headers
    async with app_parts.database(app).sessions() as session:
        assert await session.scalar(select(func.count()).select_from(pings)) == 0
        assert await session.scalar(select(func.count()).select_from(Machine)) == 0


async def test_not_json_at_all(client: httpx.AsyncClient) -> None:
    for content in (b"", b"{", b"\xff\xfe", b"licence_key=ABC"):
        response = await client.post("/v1/ping", content=content, headers=JSON_HEADERS)
        assert response.status_code == 422
    bad_length = await client.post(
        "/v1/ping", content=b"{}", headers={**JSON_HEADERS, "Content-Length": "x"}
    )
    assert bad_length.status_code == 400
