"""Free text cannot slip into the store through the ping: versions must be versions,
channel and feed names are kept only when published."""

from __future__ import annotations

import json

import httpx
import pytest
from callhome_client import ConfigurationError
from callhome_client._request import check_version
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.core.auth import Scope
from app.core.versions import is_version
from app.ingest.models import pings
from app.ping.schemas import PingRequest
from tests.support import app_parts
from tests.support.licences import create_licence
from tests.support.pings import JSON_HEADERS, ping_body, send_ping
from tests.support.releases import publish_release, publish_set, set_body
from tests.support.tokens import staff_headers

VERSIONS = ["8.2.1", "8.10", "1.0.0-rc.1", "2.0.0+build.7", "1.0.0-x.7.z.92", "v1.2", "2!1.0"]
NOT_VERSIONS = ["host-alice-laptop", "alice", "user-bob", "1.2.3.x", "latest", "-1", "1..2"]


async def stored(app: FastAPI) -> list[tuple[str, str, object]]:
    async with app_parts.database(app).sessions() as session:
        rows = await session.execute(select(pings.c.version, pings.c.channel, pings.c.signatures))
        return [(version, channel, signatures) for version, channel, signatures in rows]


async def test_a_version_that_is_no_version_is_refused_unechoed(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app)
    for version in NOT_VERSIONS:
        response = await client.post(
            "/v1/ping",
            content=json.dumps(ping_body(licence["key"], version=version)),
            headers=JSON_HEADERS,
        )
        assert response.status_code == 422, version
        assert version not in response.text
    for version in VERSIONS:
        await send_ping(client, app, ping_body(licence["key"], version=version))
    async with app_parts.database(app).sessions() as session:
        versions = await session.scalars(select(pings.c.version))
        assert sorted(versions) == sorted(VERSIONS)


async def test_unpublished_channel_and_feed_names_are_not_kept(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    headers = await staff_headers(app, Scope.RELEASES_WRITE, name="releng")
    await publish_release(client, headers, "8.3.0", channel="beta")
    await publish_set(client, headers, "spam", set_body(41))
    licence = await create_licence(client, app, entitlements=["spam"])
    signatures = {"spam": 40, "alice-smith-pc": 1}
    await send_ping(client, app, ping_body(licence["key"], channel="beta", signatures=signatures))
    await send_ping(client, app, ping_body(licence["key"], channel="user-bob"))
    await send_ping(client, app, ping_body(licence["key"]))
    assert sorted(await stored(app), key=str) == sorted(
        [("8.2.1", "beta", {"spam": 40}), ("8.2.1", "unknown", None), ("8.2.1", "stable", None)],
        key=str,
    )
    async with app_parts.database(app).sessions() as session:
        assert await session.scalar(select(func.count()).select_from(pings)) == 3


def _server_accepts(version: str) -> bool:
    body = {"licence_key": "K" * 16, "product": "mail", "computer_id": "c" * 32}
    try:
        PingRequest.model_validate({**body, "version": version, "user_count": 1})
    except ValueError:
        return False
    return True


def _sdk_accepts(version: str) -> bool:
    try:
        check_version(version)
    except ConfigurationError:
        return False
    return True


@pytest.mark.parametrize("version", VERSIONS + NOT_VERSIONS)
def test_the_sdk_and_the_server_agree_on_examples(version: str) -> None:
    assert _sdk_accepts(version) == _server_accepts(version) == (version in VERSIONS)
    assert is_version(version) == (version in VERSIONS)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="0123456789.+!_-vVabcdeilnoprstvxyzABCRD", min_size=1, max_size=34))
def test_the_sdk_and_the_server_agree_on_what_a_version_is(version: str) -> None:
    assert _sdk_accepts(version) == _server_accepts(version)
