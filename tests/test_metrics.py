"""/metrics: what it counts moves when pings, batches, refusals and misses happen; it can be
switched off; with several worker processes it sums them."""

from __future__ import annotations

import json
import time

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.core.auth import Scope
from app.core.metrics import HAND_OVER_S
from app.main import create_app
from app.privacy.inventory import METRICS, RUNTIME_METRIC_PREFIXES, RUNTIME_METRICS
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import JSON_HEADERS, ping_body, send_ping
from tests.support.server import serve
from tests.support.stores import Store
from tests.support.tokens import bearer, staff_token


def sample(page: str, name: str, **labels: str) -> float:
    """The value of one sample on a /metrics page; 0 when it has not appeared yet."""
    for family in text_string_to_metric_families(page):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


async def scrape(http: httpx.AsyncClient) -> str:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_a_ping_moves_the_verdict_batch_request_and_cache_counts(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app)
    await send_ping(client, app, ping_body(licence["key"]))  # the cache has it from now on
    before = await scrape(client)
    await send_ping(client, app, ping_body(licence["key"]))
    await send_ping(client, app, ping_body("NO-SUCH-LICENCE-KEY"))
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("callhome_pings_total", status="valid", seat="granted") == 1
    assert moved("callhome_pings_total", status="unknown", seat="denied") == 1
    assert moved("callhome_batch_size_count") >= 1
    assert moved("callhome_batch_size_sum") >= 1
    assert moved("callhome_batch_commit_seconds_count") >= 1
    assert moved("callhome_licence_cache_lookups_total", result="hit") >= 1
    assert moved("callhome_licence_cache_lookups_total", result="miss") >= 1
    ping_latency = {"method": "POST", "route": "/v1/ping", "status": "200"}
    assert moved("callhome_request_duration_seconds_count", **ping_latency) == 2
    assert sample(after, "callhome_check_in_factor") >= 1


async def test_refusals_are_counted_by_the_limit_passed(store: Store, clock: FrozenClock) -> None:
    settings = store.settings.model_copy(update={"rate_limit_network_per_hour": 1})
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.3", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            before = await scrape(http)
            for _ in range(2):
                await http.post(
                    "/v1/ping",
                    content=json.dumps(ping_body("SOME-UNKNOWN-KEY")),
                    headers=JSON_HEADERS,
                )
            after = await scrape(http)
    refused = {"kind": "network"}
    assert (
        sample(after, "callhome_rate_limited_total", **refused)
        - sample(before, "callhome_rate_limited_total", **refused)
        == 1
    )
    assert 'route="/v1/ping",status="429"' in after


async def test_metrics_can_be_switched_off(store: Store, clock: FrozenClock) -> None:
    app = create_app(store.settings.model_copy(update={"metrics_enabled": False}), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/metrics")).status_code == 404


def test_several_workers_are_summed(store: Store) -> None:
    with serve(store.env(), workers=2) as server:
        created = httpx.post(
            f"{server.base_url}/v1/admin/licences",
            json={"product": "mail", "max_machines": 20},
            headers=bearer(staff_token(store, Scope.LICENCES_WRITE)),
        )
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        for n in range(12):
            # A connection each: the workers take turns at accepting them.
            answer = httpx.post(
                f"{server.base_url}/v1/ping",
                content=json.dumps(ping_body(key, machine=f"pc-{n}")),
                headers=JSON_HEADERS,
            )
            assert answer.status_code == 200, answer.text
        # A worker hands its counts to the shared files within HAND_OVER_S of counting.
        time.sleep(HAND_OVER_S + 0.5)
        for _ in range(4):
            page = httpx.get(f"{server.base_url}/metrics").text
            assert sample(page, "callhome_pings_total", status="valid", seat="granted") == 12


async def test_every_metric_and_label_is_declared_in_the_privacy_inventory(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app)
    await send_ping(client, app, ping_body(licence["key"]))
    await send_ping(client, app, ping_body("NO-SUCH-LICENCE-KEY"))
    declared = {metric.name: set(metric.labels) for metric in METRICS}
    exposed = list(text_string_to_metric_families(await scrape(client)))
    ours = [family for family in exposed if not family.name.startswith(RUNTIME_METRIC_PREFIXES)]
    assert {family.name for family in ours} <= set(declared)
    for family in ours:
        for found in family.samples:
            assert set(found.labels) - {"le"} <= declared[family.name], found.name

    manifest = (await client.get("/v1/privacy")).json()
    runtime = {metric.name for metric in RUNTIME_METRICS}
    assert {metric["name"] for metric in manifest["metrics"]} == set(declared) | runtime
    # The process's own families are there, and each is declared by its prefix.
    assert {family.name.split("_")[0] + "_*" for family in exposed if family not in ours} == runtime
