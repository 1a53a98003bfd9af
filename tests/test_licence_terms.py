"""What a verdict tells the product: its machine, entitlements, trial, grace, floating seat."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.clock import rfc3339
from app.licences.models import Machine
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import ping_body, send_ping, this_machine
from tests.support.releases import publish_release, publish_set, set_body
from tests.support.stores import Store

LICENCES = "/v1/admin/licences"


async def test_the_verdict_and_the_staff_view_name_the_machine_alike(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(client, app, max_machines=2)
    first = await send_ping(client, app, ping_body(licence["key"], machine="pc-1"))
    second = await send_ping(client, app, ping_body(licence["key"], machine="pc-2"))
    detail = (await client.get(f"{LICENCES}/{licence['id']}", headers=admin_headers)).json()
    staff_refs = {machine["machine_id"][:12] for machine in detail["machines"]}
    ours = {
        first["licence"]["machines"]["this_machine"],
        second["licence"]["machines"]["this_machine"],
    }
    assert ours == staff_refs
    assert len(ours) == 2
    assert first["licence"]["machines"]["this_machine"] == this_machine(app, licence["id"], "pc-1")
    unknown = await send_ping(client, app, ping_body("NO-SUCH-KEY-1234"))
    assert unknown["licence"]["machines"]["this_machine"] is None
    assert unknown["licence"]["entitlements"] == []


async def test_entitlements_and_maintenance_are_in_the_verdict_and_a_refused_seat_gets_neither(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(
        client,
        app,
        max_machines=1,
        overage="deny",
        entitlements=["spam", "antivirus"],
        updates_until="2099-06-30",
    )
    await publish_release(client, admin_headers, "9.0.0")
    await publish_set(client, admin_headers, "spam", set_body(42))
    seated = await send_ping(client, app, ping_body(licence["key"], signatures={"spam": 41}))
    assert seated["licence"]["entitlements"] == ["antivirus", "spam"]
    assert seated["licence"]["updates_until"] == "2099-06-30"
    assert seated["update"]["version"] == "9.0.0"
    assert seated["signatures"]["spam"]["version"] == 42

    refused = await send_ping(
        client, app, ping_body(licence["key"], machine="pc-2", signatures={"spam": 41})
    )
    assert refused["licence"]["machines"]["seat"] == "denied"
    assert refused["licence"]["entitlements"] == ["antivirus", "spam"]
    assert refused["update"] is None
    assert refused["signatures"] == {}


async def test_a_trial_expires_its_days_after_the_first_seat(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(client, app, max_machines=2, trial_days=14)
    assert licence["expires_at"] is None
    assert licence["trial_days"] == 14
    clock.advance(days=3)  # the trial starts when the customer installs, not when it is sold
    started_at = clock.now()
    first = await send_ping(client, app, ping_body(licence["key"], machine="pc-1"))
    ends = rfc3339(started_at + dt.timedelta(days=14))
    assert first["licence"]["status"] == "valid"
    assert first["licence"]["expires_at"] == ends
    assert first["lease_expires"] <= ends
    clock.advance(days=2)
    second = await send_ping(client, app, ping_body(licence["key"], machine="pc-2"))
    assert second["licence"]["expires_at"] == ends  # fixed at the first seat, once
    detail = (await client.get(f"{LICENCES}/{licence['id']}", headers=admin_headers)).json()
    assert detail["expires_at"] == ends
    clock.advance(days=12, seconds=1)
    after = await send_ping(client, app, ping_body(licence["key"], machine="pc-1"))
    assert after["licence"]["status"] == "expired"


async def test_a_trial_with_an_expiry_too_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for body in (
        {"product": "mail", "trial_days": 14, "expires_at": "2099-01-01"},
        {"product": "mail", "trial_days": 0},
        {"product": "mail", "grace_days": -1},
        {"product": "mail", "lease_minutes": 30},
        {"product": "mail", "floating": True, "lease_minutes": 1},
    ):
        response = await client.post(LICENCES, json=body, headers=admin_headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    listed = (await client.get(LICENCES, headers=admin_headers)).json()
    assert listed["items"] == []


async def test_grace_after_expiry_keeps_seated_machines_running_until_grace_until(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock, admin_headers: dict[str, str]
) -> None:
    expires_at = (clock.now() + dt.timedelta(days=2)).replace(hour=0, minute=0, second=0)
    licence = await create_licence(
        client,
        app,
        max_machines=3,
        expires_at=rfc3339(expires_at),
        grace_days=5,
        entitlements=["spam"],
    )
    await publish_set(client, admin_headers, "spam", set_body(42))
    grace_until = rfc3339(expires_at + dt.timedelta(days=5))
    valid = await send_ping(client, app, ping_body(licence["key"]))
    assert valid["licence"]["grace_until"] is None
    # The offline lease may run into the grace period, never past it.
    assert valid["lease_expires"] == grace_until

    clock.current = expires_at + dt.timedelta(days=1)
    graced = await send_ping(client, app, ping_body(licence["key"], signatures={"spam": 1}))
    assert graced["licence"]["status"] == "expired"
    assert graced["licence"]["grace_until"] == grace_until
    assert graced["licence"]["machines"]["seat"] == "granted"
    assert graced["lease_expires"] == grace_until
    assert graced["update"] is None
    assert graced["signatures"] == {}  # the paid feed stops at expiry
    newcomer = await send_ping(client, app, ping_body(licence["key"], machine="pc-new"))
    assert newcomer["licence"]["machines"]["seat"] == "denied"
    assert newcomer["licence"]["grace_until"] == grace_until

    clock.current = expires_at + dt.timedelta(days=5)
    over = await send_ping(client, app, ping_body(licence["key"]))
    assert over["licence"]["status"] == "expired"
    assert over["licence"]["grace_until"] is None
    assert over["licence"]["machines"]["seat"] == "denied"


async def test_a_floating_seat_lapses_with_its_lease_and_is_reused(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(
        client, app, max_machines=1, overage="deny", floating=True, lease_minutes=10
    )
    assert (licence["floating"], licence["lease_minutes"]) == (True, 10)
    held = await send_ping(client, app, ping_body(licence["key"], machine="vm-1"))
    assert held["licence"]["machines"]["floating"] is True
    assert held["next_check_in"] <= 300  # twice within each lease
    assert held["lease_expires"] == rfc3339(clock.now() + dt.timedelta(minutes=10))
    clock.advance(minutes=6)
    renewed = await send_ping(client, app, ping_body(licence["key"], machine="vm-1"))
    assert renewed["licence"]["machines"]["seat"] == "granted"
    clock.advance(minutes=6)  # 6 minutes after the renewal: vm-1's lease still runs
    refused = await send_ping(client, app, ping_body(licence["key"], machine="vm-2"))
    assert refused["licence"]["machines"]["seat"] == "denied"
    clock.advance(minutes=4, seconds=1)  # vm-1 silent for 10 minutes: its lease lapsed
    reused = await send_ping(client, app, ping_body(licence["key"], machine="vm-2"))
    assert reused["licence"]["machines"]["seat"] == "granted"
    assert reused["licence"]["machines"]["active"] == 1
    back = await send_ping(client, app, ping_body(licence["key"], machine="vm-1"))
    assert back["licence"]["machines"]["seat"] == "denied"


async def test_twenty_racers_through_two_servers_get_exactly_three_floating_seats(
    store: Store, client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    from app.main import create_app

    licence = await create_licence(
        client, app, max_machines=3, overage="deny", floating=True, lease_minutes=15
    )
    # Three earlier leases lapsed: their seats are free for the racers.
    for n in range(3):
        await send_ping(client, app, ping_body(licence["key"], machine=f"old-{n}"))
    clock.advance(minutes=16)
    other = create_app(store.settings, clock=clock)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other, client=("198.51.100.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as second:
            servers = [(client, app), (second, other)]
            answers = await asyncio.gather(
                *(
                    send_ping(*servers[n % 2], ping_body(licence["key"], machine=f"vm-{n}"))
                    for n in range(20)
                )
            )
    seats = [answer["licence"]["machines"]["seat"] for answer in answers]
    assert seats.count("granted") == 3
    lease_start = clock.now() - dt.timedelta(minutes=15)
    async with app_parts.database(app).sessions() as session:
        holding = await session.scalar(
            select(func.count())
            .select_from(Machine)
            .where(Machine.seat == "granted", Machine.last_seen_at > lease_start)
        )
    assert holding == 3
