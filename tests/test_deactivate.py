"""Deactivation by the customer: the seat is free at once on every node, signed, rate-limited."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import httpx
from fastapi import FastAPI

from app.core import auth
from app.core.settings import Settings
from app.main import create_app
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import computer_id, ping_body, send_ping, this_machine, verify_signature
from tests.support.stores import Store
from tests.support.tokens import staff_headers

DEACTIVATE = "/v1/machines/deactivate"


def deactivation(key: str, machine: str = "pc-1", **overrides: Any) -> dict[str, Any]:
    body = {
        "licence_key": key,
        "product": "mail",
        "computer_id": computer_id(machine),
        "nonce": secrets.token_urlsafe(24),
    }
    return body | overrides


async def deactivate(http: httpx.AsyncClient, app: FastAPI, body: dict[str, Any]) -> dict[str, Any]:
    content = json.dumps(body).encode()
    response = await http.post(DEACTIVATE, content=content)
    assert response.status_code == 200, response.text
    answer = verify_signature(app, response)
    assert answer["request_sha256"] == hashlib.sha256(content).hexdigest()
    assert answer["nonce"] == body.get("nonce")
    assert answer["issued_at"] < answer["expires_at"]
    return answer


async def test_deactivation_frees_the_seat_at_once_on_every_node(
    store: Store, client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1, overage="deny")
    await send_ping(client, app, ping_body(licence["key"], machine="old-pc"))
    refused = await send_ping(client, app, ping_body(licence["key"], machine="new-pc"))
    assert refused["licence"]["machines"]["seat"] == "denied"

    other = create_app(store.settings, clock=clock)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other, client=("198.51.100.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as second:
            freed = await deactivate(second, other, deactivation(licence["key"], "old-pc"))
            assert freed["status"] == "deactivated"
            assert freed["this_machine"] == this_machine(app, licence["id"], "old-pc")
            again = await deactivate(second, other, deactivation(licence["key"], "old-pc"))
            assert again["status"] == "not_seated"  # a second call is harmless

    # The first node, whose cache held old-pc's seat, gives the newcomer the seat now.
    admitted = await send_ping(client, app, ping_body(licence["key"], machine="new-pc"))
    assert admitted["licence"]["machines"]["seat"] == "granted"
    assert admitted["licence"]["machines"]["active"] == 1
    back = await send_ping(client, app, ping_body(licence["key"], machine="old-pc"))
    assert back["licence"]["machines"]["seat"] == "denied"

    reader = await staff_headers(app, auth.Scope.LICENCES_READ)
    audit = (await client.get("/v1/admin/audit-log", headers=reader)).json()["items"]
    deactivations = [entry for entry in audit if entry["action"] == "machine.deactivate"]
    assert [(entry["actor"], entry["target_id"]) for entry in deactivations] == [
        ("customer", licence["id"])
    ]
    assert deactivations[0]["detail"] == {"machine": this_machine(app, licence["id"], "old-pc")}


async def test_an_unknown_key_learns_no_more_than_from_the_ping(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_machines=1)
    await send_ping(client, app, ping_body(licence["key"]))
    unknown = await deactivate(client, app, deactivation("NO-SUCH-KEY-0000"))
    other_product = await deactivate(client, app, deactivation(licence["key"], product="web"))
    for answer in (unknown, other_product):
        assert (answer["status"], answer["this_machine"]) == ("unknown", None)
    # The wrong product frees nothing.
    kept = await send_ping(client, app, ping_body(licence["key"]))
    assert kept["licence"]["machines"]["active"] == 1


async def test_a_malformed_deactivation_is_refused_without_echo(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app)
    for body in (
        deactivation(licence["key"], email="someone@example.com"),
        deactivation(licence["key"], computer_id="/home/someone/.id"),
        {"licence_key": licence["key"], "product": "mail"},
    ):
        response = await client.post(DEACTIVATE, content=json.dumps(body))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert licence["key"] not in response.text
        assert "someone" not in response.text
    too_big = await client.post(DEACTIVATE, content=b" " * 5000)
    assert too_big.status_code == 413
    assert too_big.json()["detail"] == "A deactivation is at most 4096 bytes"


async def test_deactivation_is_rate_limited_like_the_ping(store: Store, clock: FrozenClock) -> None:
    settings: Settings = store.settings.model_copy(
        update={
            "rate_limit_sync_s": 3600.0,
            "rate_limit_licence_per_hour": 3,
            "rate_limit_machine_per_hour": 1,
        }
    )
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4242))
        async with httpx.AsyncClient(transport=transport, base_url="http://c.test") as http:
            licence = await create_licence(http, app, max_machines=1)
            await send_ping(http, app, ping_body(licence["key"]))
            for _ in range(2):
                await deactivate(http, app, deactivation(licence["key"]))
            refused = await http.post(DEACTIVATE, content=json.dumps(deactivation(licence["key"])))
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) >= 1
            assert licence["key"] not in refused.text
