"""The privacy promise as a test: canary addresses, computer IDs and keys go in through
every door, and then appear nowhere: not in any table, file, dump, log line or metric."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import uuid

import httpx
import pytest
import sqlalchemy as sa
from callhome_client import offline_request
from fastapi import FastAPI

from app.core.auth import Scope
from app.core.events.models import SUBSCRIBABLE
from app.events import notices
from app.main import create_app
from tests.support import app_parts
from tests.support.abuse import detect
from tests.support.clocks import FrozenClock
from tests.support.dumps import full_dump
from tests.support.forms import csrf_token
from tests.support.offline import signed_document
from tests.support.pings import JSON_HEADERS, ping_body, send_ping
from tests.support.receiver import Receiver
from tests.support.server import serve
from tests.support.stores import Store
from tests.support.tokens import staff_headers
from tests.support.webhooks import (
    add_endpoint,
    deliver_until_idle,
    hand_turned_worker,
    webhook_settings,
)

CANARY_KEYS = ["CANARY-LICENCE-KEY-0042", "CANARY-LICENCE-KEY-0043"]
CANARY_COMPUTERS = ["CanaryComputerIdAlpha0001", "CanaryComputerIdBravo0002"]
DIRECT_V4 = "203.0.113.199"
DIRECT_V6 = "2001:db8:c0de:77::1"
FORWARDED_V4 = "192.0.2.177"
FORWARDED_V6 = "2001:db8:feed:5::9"
SERVED_V4 = "198.51.100.231"
PROXY = "10.9.9.9"
CANARIES = [
    *CANARY_KEYS,
    *[key.replace("-", "") for key in CANARY_KEYS],
    *CANARY_COMPUTERS,
    DIRECT_V4, DIRECT_V6, FORWARDED_V4, FORWARDED_V6, SERVED_V4,
    # The /24 and /48 prefixes, in text form.
    "203.0.113", "2001:db8:c0de", "2001:0db8:c0de", "192.0.2", "2001:db8:feed", "198.51.100",
]  # fmt: skip


def assert_no_canary(where: str, haystack: str) -> None:
    lowered = haystack.lower()
    found = [canary for canary in CANARIES if canary.lower() in lowered]
    assert not found, f"{where} holds {found}"


async def test_nothing_identifying_is_kept_or_logged(
    store: Store, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    trusted = store.settings.model_copy(
        update={"trusted_proxies": (ipaddress.ip_network(f"{PROXY}/32"),)}
    )
    app = create_app(trusted, clock=clock)
    async with app.router.lifespan_context(app):
        licence_ids = await _ping_through_every_door(app)
        for where, text in await _the_customers_doors(app):
            assert_no_canary(where, text)
        metrics_page = await _scrape_metrics(app)
    served_output, served_metrics = _ping_a_real_server(store)

    assert_no_canary("the store", await full_dump(store))
    assert_no_canary("the metrics", metrics_page)
    assert_no_canary("the served process's metrics", served_metrics)
    pseudonyms = app_parts.pseudonyms(app)
    identifiers = [
        *licence_ids,
        *[pseudonyms.key_hash(key) for key in CANARY_KEYS],
        *[
            pseudonyms.machine_id(uuid.UUID(licence_id), computer)
            for licence_id in licence_ids
            for computer in CANARY_COMPUTERS
        ],
    ]
    for page in (metrics_page, served_metrics):
        assert "callhome_pings_total" in page  # the scrape did see the pings
        found = [value for value in identifiers if value in page]
        assert not found, f"the metrics hold licence ids, key hashes or machine ids: {found}"
    # httpx and httpcore are the test's own client, which knows what it sent.
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    server_log = "\n".join(record.getMessage() for record in server_records)
    assert "POST /v1/ping 200" in server_log  # the capture did see the server's lines
    assert_no_canary("the log", server_log)
    assert_no_canary("the served process's output", served_output)


async def _scrape_metrics(app: FastAPI) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
        page = await http.get("/metrics")
    assert page.status_code == 200
    return page.text


async def _ping_through_every_door(app: FastAPI) -> list[str]:
    """Pings with the canaries through every way in; the ids of the licences made for them."""
    licence_ids = []

    def client_from(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 4242))
        return httpx.AsyncClient(transport=transport, base_url="http://callhome.test")

    async with client_from(DIRECT_V4) as http:
        headers = await staff_headers(app, Scope.LICENCES_WRITE)
        for key in CANARY_KEYS:
            created = await http.post(
                "/v1/admin/licences", json={"product": "mail", "key": key}, headers=headers
            )
            assert created.status_code == 201
            licence_ids.append(created.json()["id"])
        for key, computer in zip(CANARY_KEYS, CANARY_COMPUTERS, strict=True):
            await send_ping(http, app, ping_body(key, computer_id=computer))
        bad = ping_body(CANARY_KEYS[0], computer_id=CANARY_COMPUTERS[0], extra=DIRECT_V4)
        refused = await http.post("/v1/ping", content=json.dumps(bad), headers=JSON_HEADERS)
        assert refused.status_code == 422
        assert_no_canary("a 422 answer", refused.text)
        wrong = ping_body(CANARY_KEYS[0], computer_id=f"{CANARY_COMPUTERS[0]} @/etc/passwd")
        assert (
            await http.post("/v1/ping", content=json.dumps(wrong), headers=JSON_HEADERS)
        ).status_code == 422
    async with client_from(DIRECT_V6) as http:
        await send_ping(http, app, ping_body(CANARY_KEYS[0], computer_id=CANARY_COMPUTERS[0]))
    async with client_from(PROXY) as http:
        for forwarded in (FORWARDED_V4, FORWARDED_V6):
            await send_ping(
                http,
                app,
                ping_body(CANARY_KEYS[1], computer_id=CANARY_COMPUTERS[1]),
                headers={"X-Forwarded-For": f"{forwarded}, {PROXY}"},
            )
    return licence_ids


async def _the_customers_doors(app: FastAPI) -> list[tuple[str, str]]:
    """A deactivation, a /my/ sign-in and page views, and offline licence files made from
    the canaries: what each answered, page by page and file by file."""
    seen: list[tuple[str, str]] = []
    transport = httpx.ASGITransport(app=app, client=(DIRECT_V4, 4242))
    async with httpx.AsyncClient(transport=transport, base_url="https://callhome.test") as http:
        body = {
            "licence_key": CANARY_KEYS[0],
            "product": "mail",
            "computer_id": CANARY_COMPUTERS[0],
        }
        deactivated = await http.post("/v1/machines/deactivate", content=json.dumps(body))
        assert deactivated.json()["status"] == "deactivated"
        seen.append(("the deactivation's answer", deactivated.text))

        request = offline_request(CANARY_KEYS[1], "mail", "8.2.1", computer_id=CANARY_COMPUTERS[1])
        issuer = await staff_headers(app, Scope.LICENCES_WRITE)
        issued = await http.post("/v1/admin/offline-activations", content=request, headers=issuer)
        assert issued.status_code == 200, issued.text
        seen.append(("a licence file", issued.text))
        seen.append(("a licence file's document", json.dumps(signed_document(issued.content))))

        origin = {"Origin": "https://callhome.test"}
        signed_in = await http.post("/my/sign-in", data={"key": CANARY_KEYS[0]}, headers=origin)
        assert signed_in.status_code == 303
        page = await http.get("/my/")
        assert page.status_code == 200
        seen.append(("the /my/ page", page.text))
        seen.append(("the /my/ export", (await http.get("/my/export")).text))
        upload = offline_request(CANARY_KEYS[0], "mail", "8.2.1", computer_id=CANARY_COMPUTERS[0])
        uploaded = await http.post(
            "/my/offline",
            data={"csrf_token": csrf_token(page.text)},
            files={"request_file": ("request.json", upload)},
            headers=origin,
        )
        assert uploaded.status_code == 200, uploaded.text
        seen.append(("the licence file from /my/", uploaded.text))
        seen.append(("the /my/ page after", (await http.get("/my/")).text))
        refused = await http.post("/my/sign-in", data={"key": CANARY_KEYS[0] + "X"}, headers=origin)
        seen.append(("a refused /my/ sign-in", refused.text))
    return seen


def _ping_a_real_server(store: Store) -> tuple[str, str]:
    """The served process's output and its /metrics page, after a ping with canaries."""
    env = {**store.env(), "CALLHOME_TRUSTED_PROXIES": "127.0.0.1/32", "CALLHOME_LOG_LEVEL": "debug"}
    with serve(env) as server:
        body = ping_body(CANARY_KEYS[0], computer_id=CANARY_COMPUTERS[1])
        answer = httpx.post(
            f"{server.base_url}/v1/ping",
            content=json.dumps(body),
            headers={**JSON_HEADERS, "X-Forwarded-For": SERVED_V4},
        )
        assert answer.status_code == 200
        assert json.loads(answer.content)["licence"]["status"] == "valid"
        malformed = httpx.post(
            f"{server.base_url}/v1/ping/{SERVED_V4}",
            content=json.dumps({**body, "ip": SERVED_V4}),
            headers={**JSON_HEADERS, "X-Forwarded-For": SERVED_V4},
        )
        assert malformed.status_code == 404
        metrics_page = httpx.get(f"{server.base_url}/metrics").text
        output = server.stop()
    assert "POST /v1/ping 200" in output  # the access log is there, and speaks of routes
    return output, metrics_page


async def test_the_outbox_and_the_webhooks_as_received_hold_no_canary(
    store: Store, clock: FrozenClock, receiver: Receiver
) -> None:
    """Every event a licence, a machine or a report can cause, with the canaries behind it:
    the outbox table and what the vendor's receiver gets carry none of them, nor a key hash
    or a machine id in full."""
    app = create_app(webhook_settings(store), clock=clock)
    async with app.router.lifespan_context(app), hand_turned_worker(app):
        transport = httpx.ASGITransport(app=app, client=(DIRECT_V4, 4242))
        async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
            added = await add_endpoint(
                http, app, receiver.url, [str(kind) for kind in SUBSCRIBABLE]
            )
            receiver.secrets = [added["secret"]]
            headers = await staff_headers(app, Scope.LICENCES_WRITE, Scope.LICENCES_READ)
            licences = []
            for key, overage in zip(CANARY_KEYS, ("deny", "report"), strict=True):
                created = await http.post(
                    "/v1/admin/licences",
                    json={"product": "mail", "key": key, "max_machines": 1, "overage": overage},
                    headers=headers,
                )
                assert created.status_code == 201
                licences.append(created.json())
            for key in CANARY_KEYS:
                for computer in CANARY_COMPUTERS:
                    await send_ping(http, app, ping_body(key, computer_id=computer))
            await detect(app)
            soon = (clock.now() + dt.timedelta(days=3)).isoformat()
            for licence in licences:
                changed = await http.patch(
                    f"/v1/admin/licences/{licence['id']}",
                    json={"expires_at": soon},
                    headers=headers,
                )
                assert changed.status_code == 200
            shown = await http.get(f"/v1/admin/licences/{licences[1]['id']}", headers=headers)
            machine = shown.json()["machines"][0]["machine_id"][:12]
            retired = await http.delete(
                f"/v1/admin/licences/{licences[1]['id']}/machines/{machine}", headers=headers
            )
            assert retired.status_code == 200
            # The key holder frees its seated machine on the licence that denies newcomers.
            body = {
                "licence_key": CANARY_KEYS[0],
                "product": "mail",
                "computer_id": CANARY_COMPUTERS[0],
            }
            freed = await http.post("/v1/machines/deactivate", content=json.dumps(body))
            assert freed.json()["status"] == "deactivated", freed.text
            async with app_parts.database(app).sessions() as session, session.begin():
                await notices.run(session, app_parts.settings(app), clock.now())
            await deliver_until_idle(app, clock)
        async with app_parts.database(app).sessions() as session:
            outbox = [
                repr(tuple(row)) for row in await session.execute(sa.text("SELECT * FROM events"))
            ]
        pseudonyms = app_parts.pseudonyms(app)

    received = [f"{request.headers!r} {request.body.decode()}" for request in receiver.received]
    types = {request.document["type"] for request in receiver.received}
    assert types == {
        "licence.created",
        "licence.changed",
        "licence.expiring",
        "machine.seat_denied",
        "machine.deactivated",
        "report.opened",
    }, "every kind of event about licences and machines went through"
    deactivated_by = {
        request.message_id: request.document["data"]["by"]
        for request in receiver.received
        if request.document["type"] == "machine.deactivated"
    }
    assert sorted(deactivated_by.values()) == ["customer", "staff"], (
        "staff's retirement and the key holder's own deactivation"
    )
    assert receiver.forged == [] and len(outbox) >= len(received)
    identifiers = [
        *[pseudonyms.key_hash(key) for key in CANARY_KEYS],
        *[
            pseudonyms.machine_id(uuid.UUID(licence["id"]), computer)
            for licence in licences
            for computer in CANARY_COMPUTERS
        ],
    ]
    for where, texts in (("the outbox table", outbox), ("a webhook as received", received)):
        for text in texts:
            assert_no_canary(where, text)
            found = [value for value in identifiers if value.lower() in text.lower()]
            assert not found, f"{where} holds key hashes or machine ids: {found}"


async def test_store_errors_never_carry_the_values_bound_to_them(store: Store) -> None:
    from sqlalchemy import text

    from app.core.database import create_engine

    engine = create_engine(store.url)
    try:
        async with engine.connect() as connection:
            with pytest.raises(Exception) as failure:
                await connection.execute(
                    text("SELECT * FROM no_such_table WHERE x = :v"), {"v": DIRECT_V4}
                )
    finally:
        await engine.dispose()
    assert "no_such_table" in str(failure.value)
    assert_no_canary("a store error", str(failure.value))
