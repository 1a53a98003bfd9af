"""The ping: verdicts, seats, signatures and the contract's limits."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core import auth
from app.ingest.models import pings
from app.licences.models import Machine
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import JSON_HEADERS, ping_body, send_ping, this_machine, verify_signature
from tests.support.stores import Store
from tests.support.tokens import staff_headers


async def stored_pings(app: FastAPI) -> int:
    async with app_parts.database(app).sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(pings)) or 0)


async def change(http: httpx.AsyncClient, app: FastAPI, licence_id: str, **fields: Any) -> None:
    headers = await staff_headers(app, auth.Scope.LICENCES_WRITE, name="changer")
    response = await http.patch(f"/v1/admin/licences/{licence_id}", json=fields, headers=headers)
    assert response.status_code == 200, response.text


async def test_valid_licence_gets_a_signed_valid_verdict(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(
        client, app, max_machines=2, max_users=25, expires_at="2099-01-01"
    )
    answer = await send_ping(client, app, ping_body(licence["key"], user_count=25))
    async with app_parts.database(app).sessions() as session:
        machine_id = await session.scalar(select(Machine.machine_id))
    assert machine_id is not None
    assert answer["licence"] == {
        "status": "valid",
        "expires_at": "2099-01-01T00:00:00Z",
        "grace_until": None,
        "max_users": 25,
        "users_over_limit": False,
        "entitlements": [],
        "updates_until": None,
        "machines": {
            "allowed": 2,
            "active": 1,
            "over_limit": False,
            "seat": "granted",
            "this_machine": machine_id[:12],
            "floating": False,
        },
    }
    assert answer["update"] is None
    assert answer["signatures"] == {}
    assert 0.9 * 6 * 3600 <= answer["next_check_in"] <= 1.1 * 6 * 3600
    assert answer["server_time"] == clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert answer["lease_expires"] > answer["server_time"]
    # The freshness window every signed document carries: issued now, trusted until the lease ends.
    assert answer["issued_at"] == answer["server_time"]
    assert answer["expires_at"] == answer["lease_expires"]
    assert await stored_pings(app) == 1


async def test_keys_are_matched_as_customers_type_them(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await create_licence(client, app, key="ABCDE-FGHJK-MNPQR-STVWX")
    answer = await send_ping(client, app, ping_body("abcde fghjk mnpqr stvwx"))
    assert answer["licence"]["status"] == "valid"


async def test_users_over_the_limit_are_flagged(client: httpx.AsyncClient, app: FastAPI) -> None:
    licence = await create_licence(client, app, max_users=25)
    answer = await send_ping(client, app, ping_body(licence["key"], user_count=26))
    assert answer["licence"]["users_over_limit"] is True


async def test_expired_by_date(client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock) -> None:
    expires = clock.now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
    licence = await create_licence(client, app, expires_at=expires)
    answer = await send_ping(client, app, ping_body(licence["key"]))
    assert answer["licence"]["status"] == "expired"
    assert answer["licence"]["machines"]["seat"] == "denied"
    assert await stored_pings(app) == 1


async def test_lease_never_outlives_the_licence(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    tomorrow = clock.now().replace(microsecond=0) + dt.timedelta(days=1)
    licence = await create_licence(client, app, expires_at=tomorrow.isoformat())
    answer = await send_ping(client, app, ping_body(licence["key"]))
    assert answer["lease_expires"] == tomorrow.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert answer["expires_at"] == answer["lease_expires"]


@pytest.mark.parametrize("status", ["suspended", "revoked"])
async def test_suspended_and_revoked_licences_are_told_so_at_once(
    client: httpx.AsyncClient, app: FastAPI, status: str
) -> None:
    licence = await create_licence(client, app)
    first = await send_ping(client, app, ping_body(licence["key"]))
    assert first["licence"]["status"] == "valid"
    await change(client, app, licence["id"], status=status)
    answer = await send_ping(client, app, ping_body(licence["key"]))
    assert answer["licence"]["status"] == status
    assert answer["licence"]["machines"]["seat"] == "denied"


async def test_unknown_key_and_wrong_product_are_unknown(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app)
    unknown = await send_ping(client, app, ping_body("NOT-A-LICENCE-KEY"))
    assert unknown["licence"]["status"] == "unknown"
    assert unknown["licence"]["machines"]["seat"] == "denied"
    other_product = await send_ping(client, app, ping_body(licence["key"], product="fax"))
    assert other_product["licence"]["status"] == "unknown"
    assert await stored_pings(app) == 0


async def test_a_key_tried_before_its_licence_existed_works_once_created(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    early = await send_ping(client, app, ping_body("LATE-ARRIVING-KEY-1"))
    assert early["licence"]["status"] == "unknown"
    await create_licence(client, app, key="LATE-ARRIVING-KEY-1")
    answer = await send_ping(client, app, ping_body("LATE-ARRIVING-KEY-1"))
    assert answer["licence"]["status"] == "valid"


async def test_report_policy_grants_and_flags_over_the_limit(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_machines=2, overage="report")
    seats = [
        (await send_ping(client, app, ping_body(licence["key"], machine=f"pc-{n}")))["licence"]
        for n in range(3)
    ]
    assert [s["machines"]["seat"] for s in seats] == ["granted"] * 3
    assert [s["machines"]["active"] for s in seats] == [1, 2, 3]
    assert [s["machines"]["over_limit"] for s in seats] == [False, False, True]


async def test_deny_policy_refuses_newcomers_and_keeps_known_machines(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_machines=2, overage="deny")
    for n in range(2):
        await send_ping(client, app, ping_body(licence["key"], machine=f"pc-{n}"))
    third = await send_ping(client, app, ping_body(licence["key"], machine="pc-2"))
    assert third["licence"]["machines"] == {
        "allowed": 2,
        "active": 2,
        "over_limit": False,
        "seat": "denied",
        "this_machine": this_machine(app, licence["id"], "pc-2"),
        "floating": False,
    }
    again = await send_ping(client, app, ping_body(licence["key"], machine="pc-2"))
    assert again["licence"]["machines"]["seat"] == "denied"
    for n in range(2):
        known = await send_ping(client, app, ping_body(licence["key"], machine=f"pc-{n}"))
        assert known["licence"]["machines"]["seat"] == "granted"


async def test_a_silent_machine_frees_its_seat(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1, overage="deny")
    await send_ping(client, app, ping_body(licence["key"], machine="old-pc"))
    clock.advance(days=3)
    refused = await send_ping(client, app, ping_body(licence["key"], machine="new-pc"))
    assert refused["licence"]["machines"]["seat"] == "denied"
    clock.advance(days=4, seconds=1)  # old-pc silent for 7 days: outside the window
    admitted = await send_ping(client, app, ping_body(licence["key"], machine="new-pc"))
    assert admitted["licence"]["machines"] == {
        "allowed": 1,
        "active": 1,
        "over_limit": False,
        "seat": "granted",
        "this_machine": this_machine(app, licence["id"], "new-pc"),
        "floating": False,
    }
    returning = await send_ping(client, app, ping_body(licence["key"], machine="old-pc"))
    assert returning["licence"]["machines"]["seat"] == "denied"


async def test_two_servers_never_admit_more_than_the_limit(
    store: Store, client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    """20 new machines at once, through two servers with their own connections: 3 seats."""
    from app.main import create_app

    licence = await create_licence(client, app, max_machines=3, overage="deny")
    other = create_app(store.settings, clock=clock)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other, client=("198.51.100.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as second:
            servers = [(client, app), (second, other)]
            answers = await asyncio.gather(
                *(
                    send_ping(*servers[n % 2], ping_body(licence["key"], machine=f"pc-{n}"))
                    for n in range(20)
                )
            )
    seats = [answer["licence"]["machines"]["seat"] for answer in answers]
    assert seats.count("granted") == 3
    async with app_parts.database(app).sessions() as session:
        granted = await session.scalar(
            select(func.count()).select_from(Machine).where(Machine.seat == "granted")
        )
    assert granted == 3


async def test_the_signature_binds_the_exact_bytes(client: httpx.AsyncClient, app: FastAPI) -> None:
    licence = await create_licence(client, app)
    body = json.dumps(ping_body(licence["key"], nonce="n" * 20)).encode()
    response = await client.post("/v1/ping", content=body, headers=JSON_HEADERS)
    answer = verify_signature(app, response)
    assert answer["nonce"] == "n" * 20
    header = dict(
        part.strip().split("=", 1) for part in response.headers["Callhome-Signature"].split(",")
    )
    keys = (await client.get("/v1/keys")).json()["keys"]
    assert [key["keyid"] for key in keys] == [header["keyid"]]
    public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(keys[0]["public_key"]))
    tampered = response.content.replace(b'"valid"', b'"VALID"')
    assert tampered != response.content
    with pytest.raises(InvalidSignature):
        public_key.verify(base64.b64decode(header["ed25519"]), tampered)


async def test_a_ping_without_nonce_gets_null(client: httpx.AsyncClient, app: FastAPI) -> None:
    licence = await create_licence(client, app)
    body = ping_body(licence["key"])
    del body["nonce"]
    answer = await send_ping(client, app, body)
    assert answer["nonce"] is None


async def test_oversize_bodies_get_413(client: httpx.AsyncClient, app: FastAPI) -> None:
    licence = await create_licence(client, app)
    body = ping_body(licence["key"], padding="x" * 100 * 1024)
    response = await client.post("/v1/ping", content=json.dumps(body), headers=JSON_HEADERS)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"

    async def chunks() -> Any:
        for _ in range(30):
            yield b" " * 200  # no Content-Length: refused when it passes the limit

    streamed = await client.post("/v1/ping", content=chunks(), headers=JSON_HEADERS)
    assert streamed.status_code == 413
    assert await stored_pings(app) == 0


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "application/jsonx", "application/json-patch+json"],
)  # fmt: skip
async def test_a_ping_that_is_not_json_gets_415(
    client: httpx.AsyncClient, app: FastAPI, content_type: str | None
) -> None:
    """What a browser may send across sites without asking first is no ping."""
    licence = await create_licence(client, app)
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(
        "/v1/ping", content=json.dumps(ping_body(licence["key"])), headers=headers
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert await stored_pings(app) == 0


async def test_json_with_a_charset_is_a_ping(client: httpx.AsyncClient, app: FastAPI) -> None:
    licence = await create_licence(client, app)
    headers = {"Content-Type": "Application/JSON; charset=utf-8"}
    await send_ping(client, app, ping_body(licence["key"]), headers=headers)


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
async def test_other_methods_on_the_ping_get_405(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/v1/ping")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


async def test_concurrent_pings_are_each_stored_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_machines=50)
    bodies = [ping_body(licence["key"], machine=f"pc-{n % 40}") for n in range(200)]
    answers = await asyncio.gather(*(send_ping(client, app, body) for body in bodies))
    assert len(answers) == 200
    assert await stored_pings(app) == 200
    async with app_parts.database(app).sessions() as session:
        machines = await session.scalar(select(func.count()).select_from(Machine))
    assert machines == 40
