"""Each kind of finding: raised at its threshold and not below, updated not duplicated,
and blind to retired machines and to machines silent past the window."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from app.core import auth
from tests.support import app_parts
from tests.support.abuse import detect, stored_reports
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import computer_id, ping
from tests.support.tokens import staff_headers


async def retire(http: httpx.AsyncClient, app: FastAPI, licence_id: str, machine: str) -> None:
    headers = await staff_headers(app, auth.Scope.LICENCES_WRITE, name="support")
    machine_id = app_parts.pseudonyms(app).machine_id(uuid.UUID(licence_id), computer_id(machine))
    response = await http.delete(
        f"/v1/admin/licences/{licence_id}/machines/{machine_id[:12]}", headers=headers
    )
    assert response.status_code == 200, response.text


async def lower_limit(http: httpx.AsyncClient, app: FastAPI, licence_id: str, to: int) -> None:
    headers = await staff_headers(app, auth.Scope.LICENCES_WRITE, name="support")
    response = await http.patch(
        f"/v1/admin/licences/{licence_id}", json={"max_machines": to}, headers=headers
    )
    assert response.status_code == 200, response.text


def summary(reports: list) -> list[tuple[str, int, int]]:  # type: ignore[type-arg]
    return [(report.kind, report.figure, report.allowed) for report in reports]


# -- machines_over_limit ----------------------------------------------------------


async def test_machines_over_limit_on_a_sweep_confirming_the_ping_path(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_machines=2)
    for n in range(3):
        await ping(app, licence["key"], f"pc-{n}")
    await app_parts.abuse(app).flush()
    assert await stored_reports(app) == [], "one check is not enough"
    await detect(app)
    [report] = await stored_reports(app)
    assert summary([report]) == [("machines_over_limit", 3, 2)]
    assert report.severity == 50
    assert report.status == "open"
    shown = report.evidence["machines"]
    assert len(shown) == 3
    assert all(len(entry["machine"]) == 12 for entry in shown)
    assert {entry["version"] for entry in shown} == {"8.2.1"}


async def test_machines_at_the_limit_raise_nothing(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=2)
    for _ in range(2):
        for n in range(2):
            await ping(app, licence["key"], f"pc-{n}")
        await detect(app)
        clock.advance(hours=6)
    assert await stored_reports(app) == []


async def test_two_sweeps_raise_it_only_when_the_machines_are_seen_again(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=3)
    for n in range(3):
        await ping(app, licence["key"], f"pc-{n}")
    await lower_limit(client, app, licence["id"], 2)
    clock.advance(minutes=5)
    await detect(app)
    clock.advance(minutes=5)
    await detect(app)
    assert await stored_reports(app) == [], "nothing seen since the first check"
    clock.advance(hours=6)
    for n in range(3):
        await ping(app, licence["key"], f"pc-{n}")
    await detect(app)
    assert summary(await stored_reports(app)) == [("machines_over_limit", 3, 2)]


async def test_a_reimaged_pc_raises_nothing(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1)
    await ping(app, licence["key"], "before-reimage")
    clock.advance(hours=2)
    answer = await ping(app, licence["key"], "after-reimage")
    assert answer["licence"]["machines"]["over_limit"] is True
    for _ in range(3):
        await detect(app)
        clock.advance(hours=6)
        await ping(app, licence["key"], "after-reimage")
    assert await stored_reports(app) == []


async def test_machines_report_is_updated_not_duplicated(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=2)
    for n in range(3):
        await ping(app, licence["key"], f"pc-{n}")
    await detect(app)
    clock.advance(hours=1)
    await ping(app, licence["key"], "pc-3")
    await detect(app)
    await detect(app)
    [report] = await stored_reports(app)
    assert (report.figure, report.peak_figure, report.severity) == (4, 4, 100)
    assert len(report.evidence["machines"]) == 4


async def test_a_retired_machine_stops_counting_for_machines(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_machines=1)
    await ping(app, licence["key"], "old-pc")
    await ping(app, licence["key"], "new-pc")
    await app_parts.abuse(app).flush()
    await retire(client, app, licence["id"], "old-pc")
    await detect(app)
    assert await stored_reports(app) == []


async def test_a_machine_silent_past_the_window_stops_counting_for_machines(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1, activity_window_days=7)
    await ping(app, licence["key"], "pc-a")
    await ping(app, licence["key"], "pc-b")
    await app_parts.abuse(app).flush()
    clock.advance(days=7, seconds=1)
    await ping(app, licence["key"], "pc-a")
    await detect(app)
    assert await stored_reports(app) == []


# -- users_over_limit -------------------------------------------------------------


async def test_users_over_limit_from_the_ping_path(client: httpx.AsyncClient, app: FastAPI) -> None:
    licence = await create_licence(client, app, max_users=25, max_machines=2)
    await ping(app, licence["key"], "pc-1", user_count=25)
    await detect(app)
    assert await stored_reports(app) == []
    await ping(app, licence["key"], "pc-1", user_count=26)
    await app_parts.abuse(app).flush()
    [report] = await stored_reports(app)
    assert summary([report]) == [("users_over_limit", 26, 25)]
    assert report.evidence["pings_over_limit"] == 1
    await ping(app, licence["key"], "pc-2", user_count=40)
    await ping(app, licence["key"], "pc-1", user_count=30)
    await detect(app)
    [report] = await stored_reports(app)
    assert (report.figure, report.peak_figure, report.severity) == (40, 40, 60)
    assert report.evidence["peak_user_count"] == 40
    assert report.evidence["pings_over_limit"] == 3
    assert len(report.evidence["machines"]) == 2


async def test_the_sweep_finds_what_the_ping_path_lost(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_users=25)
    await ping(app, licence["key"], "pc-1", user_count=26)
    app_parts.abuse(app).findings.drain()  # as if the process had crashed before the flush
    await detect(app)
    assert summary(await stored_reports(app)) == [("users_over_limit", 26, 25)]


async def test_a_retired_machine_stops_counting_for_users(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_users=25, max_machines=2)
    await ping(app, licence["key"], "pc-1", user_count=26)
    app_parts.abuse(app).findings.drain()
    await retire(client, app, licence["id"], "pc-1")
    await detect(app)
    assert await stored_reports(app) == []


async def test_users_reported_before_the_window_stop_counting(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_users=25, activity_window_days=7)
    await ping(app, licence["key"], "pc-1", user_count=26)
    app_parts.abuse(app).findings.drain()
    clock.advance(days=7, seconds=1)
    await ping(app, licence["key"], "pc-1", user_count=20)
    await detect(app)
    assert await stored_reports(app) == []


# -- machine_churn (defaults: more than max(10, 3 x max_machines) in 30 days) ------


async def churn(app: FastAPI, key: str, machines: int, clock: FrozenClock) -> None:
    """Distinct machines, one a day: never two at once, so never over the seat limit."""
    for n in range(machines):
        await ping(app, key, f"churn-{n}")
        clock.advance(days=1)


async def test_machine_churn_above_its_threshold(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1, activity_window_days=1)
    await churn(app, licence["key"], 10, clock)
    await detect(app)
    assert await stored_reports(app) == [], "10 is the threshold, not above it"
    await churn(app, licence["key"], 11, clock)
    await detect(app)
    await detect(app)
    [report] = await stored_reports(app)
    assert summary([report]) == [("machine_churn", 11, 10)]
    assert report.severity == 10
    assert report.evidence["window_days"] == 30


async def test_machine_churn_threshold_follows_the_licence_size(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=5, activity_window_days=1)
    await churn(app, licence["key"], 15, clock)
    await detect(app)
    assert await stored_reports(app) == []
    await ping(app, licence["key"], "one-more")
    await detect(app)
    assert summary(await stored_reports(app)) == [("machine_churn", 16, 15)]


async def test_retired_and_long_silent_machines_stop_counting_for_churn(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1, activity_window_days=1)
    await ping(app, licence["key"], "long-gone")
    clock.advance(days=30)
    await churn(app, licence["key"], 11, clock)
    await retire(client, app, licence["id"], "churn-0")
    await detect(app)
    assert await stored_reports(app) == []


# -- network_spread (defaults: more than max(4, 2 x max_machines) networks a day) --


async def from_networks(app: FastAPI, key: str, networks: int, machine: str = "pc-1") -> None:
    for n in range(networks):
        await ping(app, key, machine, address=f"198.51.{n}.10")
        await ping(app, key, machine, address=f"198.51.{n}.99")  # same /24: same network


async def test_network_spread_above_its_threshold(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1)
    await from_networks(app, licence["key"], 4)
    await detect(app)
    assert await stored_reports(app) == []
    await ping(app, licence["key"], "pc-1", address="192.0.2.1")
    await detect(app)
    await detect(app)
    [report] = await stored_reports(app)
    assert summary([report]) == [("network_spread", 5, 4)]
    assert report.evidence["day"] == clock.now().date().isoformat()
    assert "192.0.2" not in str(report.evidence)


async def test_network_spread_counts_one_day_and_ignores_retired_machines(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=2)
    await from_networks(app, licence["key"], 4)
    await ping(app, licence["key"], "visitor", address="192.0.2.1")
    await retire(client, app, licence["id"], "visitor")
    clock.advance(days=2)
    await from_networks(app, licence["key"], 4)
    await detect(app)
    assert await stored_reports(app) == []
