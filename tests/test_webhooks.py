"""Webhooks end to end: signed deliveries to a real receiver, retries through downtime and
errors, order, secret rotation, the staff API and the refusals that keep them safe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app.core.auth import Scope
from app.main import create_app
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.receiver import Receiver
from tests.support.stores import Store
from tests.support.tokens import staff_headers
from tests.support.webhooks import add_endpoint, client_of, deliver_until_idle, webhook_settings

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
async def http(hook_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(hook_app) as client:
        yield client


async def test_events_arrive_signed_by_the_specs_algorithm(
    hook_app: FastAPI, http: httpx.AsyncClient, receiver: Receiver, clock: FrozenClock
) -> None:
    added = await add_endpoint(http, hook_app, receiver.url, ["licence.created"])
    receiver.secrets = [added["secret"]]
    licence = await create_licence(http, hook_app, external_ref="CRM-4711")

    await deliver_until_idle(hook_app, clock)

    assert receiver.forged == []
    (request,) = receiver.received
    document = request.document
    assert document["type"] == "licence.created"
    assert document["data"]["licence_id"] == licence["id"]
    assert document["data"]["external_ref"] == "CRM-4711"
    assert licence["key"] not in request.body.decode()
    assert licence["key_last4"] not in request.body.decode()
    assert request.headers["webhook-id"].startswith("evt_")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"


async def test_downtime_then_errors_then_success_delivers_each_event_once_in_order(
    hook_app: FastAPI, http: httpx.AsyncClient, receiver: Receiver, clock: FrozenClock
) -> None:
    added = await add_endpoint(http, hook_app, receiver.url, ["licence.created"], ordered=True)
    receiver.secrets = [added["secret"]]
    await receiver.down()
    licences = [await create_licence(http, hook_app, external_ref=f"R{n}") for n in range(6)]
    worker = app_parts.webhooks(hook_app)

    for _ in range(3):  # nobody listening
        await worker.run_once()
        clock.advance(minutes=10)
    await receiver.up()
    receiver.status = 500
    for _ in range(3):
        await worker.run_once()
        clock.advance(minutes=10)
    assert receiver.received, "the receiver was tried while it answered 500"
    receiver.status = 200
    await deliver_until_idle(hook_app, clock)

    assert receiver.forged == []
    delivered_refs = [request.document["data"]["external_ref"] for request in receiver.unique()]
    assert delivered_refs == [licence["external_ref"] for licence in licences]
    headers = await staff_headers(hook_app, Scope.WEBHOOKS_WRITE)
    log = (await http.get(f"/v1/admin/webhooks/{added['id']}/deliveries", headers=headers)).json()
    assert {item["status"] for item in log["items"]} == {"delivered"}
    # Ordered: the oldest event held the others back through the downtime and the 500s.
    assert log["items"][-1]["attempts"] == 7
    assert log["items"][-1]["last_status_code"] == 200
    assert "body" not in str(log)


async def test_retry_after_is_honoured(
    hook_app: FastAPI, http: httpx.AsyncClient, receiver: Receiver, clock: FrozenClock
) -> None:
    added = await add_endpoint(http, hook_app, receiver.url, ["licence.created"])
    receiver.secrets = [added["secret"]]
    receiver.status, receiver.retry_after = 503, "7200"
    await create_licence(http, hook_app)
    worker = app_parts.webhooks(hook_app)
    await worker.run_once()
    receiver.status, receiver.retry_after = 200, None
    clock.advance(minutes=90)  # past any backoff of a first failure, not past Retry-After
    await worker.run_once()
    assert len(receiver.received) == 1
    clock.advance(minutes=31)
    await worker.run_once()
    assert len(receiver.received) == 2


async def test_a_round_with_nothing_due_asks_the_store_once_and_still_reports_the_queue(
    hook_app: FastAPI, http: httpx.AsyncClient, receiver: Receiver, clock: FrozenClock
) -> None:
    """Every node's worker wakes each second: one that finds nothing to send costs the
    store a single query, and the queue it reports still counts what waits."""
    added = await add_endpoint(http, hook_app, receiver.url, ["licence.created"])
    receiver.secrets = [added["secret"]]
    receiver.status = 503
    await create_licence(http, hook_app)
    worker = app_parts.webhooks(hook_app)
    assert await worker.run_once() == 1  # planned and tried; it waits out its backoff
    statements: list[str] = []

    def count(*args: Any) -> None:
        if not args[2].startswith("BEGIN"):  # SQLite's own, as every transaction opens
            statements.append(args[2])

    engine = app_parts.database(hook_app).engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert await worker.run_once() == 0
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements
    assert await metric(http, "callhome_webhook_queue_depth") == 1
    receiver.status = 200
    clock.advance(minutes=10)  # past the first backoff
    assert await worker.run_once() == 1
    assert len(receiver.received) == 2  # the attempt refused, then the one taken
    assert await metric(http, "callhome_webhook_queue_depth") == 0


async def test_an_endpoint_failing_throughout_the_window_is_disabled_and_staff_told(
    store: Store, clock: FrozenClock, receiver: Receiver
) -> None:
    app = create_app(webhook_settings(store, webhook_retry_hours=1.0), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            disabled_before = await disabled_count(http)
            added = await add_endpoint(http, app, receiver.url, ["licence.created"])
            receiver.status = 500
            await create_licence(http, app)
            worker = app_parts.webhooks(app)
            for _ in range(20):
                await worker.run_once()
                clock.advance(minutes=10)
            headers = await staff_headers(app, Scope.WEBHOOKS_WRITE, Scope.LICENCES_READ)
            shown = (await http.get(f"/v1/admin/webhooks/{added['id']}", headers=headers)).json()
            assert shown["status"] == "disabled"
            audit = (await http.get("/v1/admin/audit-log", headers=headers)).json()
            assert "webhook.disable" in {entry["action"] for entry in audit["items"]}
            log = await http.get(f"/v1/admin/webhooks/{added['id']}/deliveries", headers=headers)
            assert log.json()["items"][0]["status"] == "failed"
            assert log.json()["items"][0]["last_status_code"] == 500
            assert await disabled_count(http) == disabled_before + 1
            enabled = await http.post(f"/v1/admin/webhooks/{added['id']}/enable", headers=headers)
            assert enabled.json()["status"] == "active"


async def metric(http: httpx.AsyncClient, name: str) -> float:
    page = (await http.get("/metrics")).text
    (line,) = [ln for ln in page.splitlines() if ln.startswith(f"{name} ")]
    return float(line.split()[-1])


async def disabled_count(http: httpx.AsyncClient) -> float:
    return await metric(http, "callhome_webhook_endpoints_disabled_total")


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    hook_app: FastAPI, http: httpx.AsyncClient, receiver: Receiver, clock: FrozenClock
) -> None:
    added = await add_endpoint(
        http, hook_app, receiver.url, ["webhook.test", "licence.created"][1:]
    )
    headers = await staff_headers(hook_app, Scope.WEBHOOKS_WRITE)
    rotated = (
        await http.post(f"/v1/admin/webhooks/{added['id']}/rotate-secret", headers=headers)
    ).json()
    assert rotated["secret"] != added["secret"]
    receiver.secrets = [added["secret"]]
    sent = await http.post(f"/v1/admin/webhooks/{added['id']}/test", headers=headers)
    assert sent.status_code == 202
    await deliver_until_idle(hook_app, clock)
    receiver.secrets = [rotated["secret"]]
    await http.post(f"/v1/admin/webhooks/{added['id']}/test", headers=headers)
    await deliver_until_idle(hook_app, clock)
    assert len(receiver.received) == 2 and receiver.forged == []
    assert receiver.received[0].document["type"] == "webhook.test"

    clock.advance(hours=25)  # the overlap is over: the old secret no longer signs
    receiver.secrets = [added["secret"]]
    await http.post(f"/v1/admin/webhooks/{added['id']}/test", headers=headers)
    await deliver_until_idle(hook_app, clock)
    assert len(receiver.forged) == 1
    assert receiver.forged[0].headers["webhook-signature"].count("v1,") == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://100.100.100.200/hook",
        "http://93.184.216.34/hook",
        "https://user:pw@example.com/hook",
        "ftp://example.com/hook",
    ],
)
async def test_private_loopback_and_metadata_urls_are_refused_at_creation(
    store: Store, clock: FrozenClock, url: str
) -> None:
    app = create_app(store.settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            headers = await staff_headers(app, Scope.WEBHOOKS_WRITE)
            refused = await http.post(
                "/v1/admin/webhooks",
                json={"url": url, "events": ["licence.created"]},
                headers=headers,
            )
            assert refused.status_code == 422
            assert refused.headers["content-type"] == "application/problem+json"
            listed = await http.get("/v1/admin/webhooks", headers=headers)
            assert listed.json()["items"] == []


async def test_an_operator_may_allow_a_private_network(store: Store, clock: FrozenClock) -> None:
    import ipaddress

    allowed = store.settings.model_copy(
        update={"webhook_allowed_cidrs": (ipaddress.ip_network("10.20.0.0/16"),)}
    )
    app = create_app(allowed, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            headers = await staff_headers(app, Scope.WEBHOOKS_WRITE)
            for url, status in (("https://10.20.3.4/hook", 201), ("https://10.21.0.1/h", 422)):
                response = await http.post(
                    "/v1/admin/webhooks",
                    json={"url": url, "events": ["licence.created"]},
                    headers=headers,
                )
                assert response.status_code == status


async def test_addresses_are_vetted_again_at_delivery(
    store: Store,
    hook_app: FastAPI,
    http: httpx.AsyncClient,
    receiver: Receiver,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: a name that resolved to a public address at creation points at the
    metadata service by the time of delivery, and nothing is sent."""
    import asyncio
    import socket

    public = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]
    metadata = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 443))]
    answers = {"hooks.vendor.example": public}
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo

    async def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return answers[host]
        return await real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", resolver)
    added = await add_endpoint(
        http, hook_app, "https://hooks.vendor.example/in", ["licence.created"]
    )
    answers["hooks.vendor.example"] = metadata
    await create_licence(http, hook_app)
    await app_parts.webhooks(hook_app).run_once()

    headers = await staff_headers(hook_app, Scope.WEBHOOKS_WRITE)
    log = (await http.get(f"/v1/admin/webhooks/{added['id']}/deliveries", headers=headers)).json()
    assert log["items"][0]["last_error"] == "address_refused"
    assert log["items"][0]["status"] == "pending"


async def test_loopback_is_refused_at_delivery_without_the_test_switch(
    store: Store, hook_app: FastAPI, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    from app.events.delivery import WebhookWorker

    await add_endpoint(http, hook_app, receiver.url, ["licence.created"])
    await create_licence(http, hook_app)
    strict = WebhookWorker(app_parts.database(hook_app), store.settings, app_parts.clock(hook_app))
    try:
        assert await strict.run_once() == 1
    finally:
        await strict.stop()
    assert receiver.received == [] and receiver.forged == []


async def test_the_staff_api_asks_for_the_webhooks_scope(
    hook_app: FastAPI, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    added = await add_endpoint(http, hook_app, receiver.url, ["report.opened"])
    base = f"/v1/admin/webhooks/{added['id']}"
    wrong = await staff_headers(hook_app, Scope.LICENCES_WRITE)
    right = await staff_headers(hook_app, Scope.WEBHOOKS_WRITE)
    routes = [
        ("GET", "/v1/admin/webhooks"),
        ("GET", base),
        ("DELETE", base),
        ("POST", f"{base}/rotate-secret"),
        ("POST", f"{base}/enable"),
        ("POST", f"{base}/test"),
        ("GET", f"{base}/deliveries"),
    ]
    for method, path in routes:
        assert (await http.request(method, path)).status_code == 401
        assert (await http.request(method, path, headers=wrong)).status_code == 403
        missing = path.replace(added["id"], "00000000-0000-4000-8000-000000000000")
        if missing != path:
            assert (await http.request(method, missing, headers=right)).status_code == 404
    for body in (
        {"url": receiver.url, "events": []},
        {"url": receiver.url, "events": ["licence.stolen"]},
        {"url": receiver.url, "events": ["webhook.test"]},
        {"url": receiver.url, "events": ["licence.created"], "secret": "mine"},
    ):
        refused = await http.post("/v1/admin/webhooks", json=body, headers=right)
        assert refused.status_code == 422
    listed = (await http.get("/v1/admin/webhooks", headers=right)).json()["items"]
    assert [item["id"] for item in listed] == [added["id"]]
    assert "secret" not in listed[0]
    assert (await http.get(f"{base}/deliveries?cursor=zz", headers=right)).status_code == 422
    assert (await http.delete(base, headers=right)).status_code == 204
    assert (await http.get(base, headers=right)).status_code == 404


async def test_an_endpoint_hears_nothing_it_did_not_subscribe_to(
    hook_app: FastAPI, http: httpx.AsyncClient, receiver: Receiver, clock: FrozenClock
) -> None:
    added = await add_endpoint(http, hook_app, receiver.url, ["licence.changed"])
    receiver.secrets = [added["secret"]]
    licence = await create_licence(http, hook_app)
    headers = await staff_headers(hook_app, Scope.LICENCES_WRITE, Scope.LICENCES_READ)
    changed = await http.patch(
        f"/v1/admin/licences/{licence['id']}",
        json={"max_machines": 3, "external_ref": "ACME-1"},
        headers=headers,
    )
    assert changed.status_code == 200
    await deliver_until_idle(hook_app, clock)
    (request,) = receiver.received
    assert request.document["type"] == "licence.changed"
    assert request.document["data"]["changed"] == ["external_ref", "max_machines"]
    assert request.document["data"]["external_ref"] == "ACME-1"
    found = await http.get("/v1/admin/licences?external_ref=ACME-1", headers=headers)
    assert [item["id"] for item in found.json()["items"]] == [licence["id"]]


async def test_two_instances_deliver_each_event_once_between_them(
    store: Store, hook_app: FastAPI, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    import asyncio

    from app.core.clock import SystemClock
    from app.core.database import Database
    from app.events.delivery import WebhookWorker

    if store.kind != "postgresql":
        pytest.skip("several nodes share one store on PostgreSQL")
    added = await add_endpoint(http, hook_app, receiver.url, ["licence.created"])
    receiver.secrets = [added["secret"]]
    receiver.delay_s = 0.02
    for _ in range(30):
        await create_licence(http, hook_app)
    settings = webhook_settings(store, webhook_concurrency=4)
    nodes = [Database(settings), Database(settings)]
    workers = [WebhookWorker(database, settings, SystemClock()) for database in nodes]

    async def drain(worker: WebhookWorker) -> None:
        for _ in range(40):
            await worker.run_once()

    try:
        await asyncio.gather(*(drain(worker) for worker in workers))
    finally:
        for worker, database in zip(workers, nodes, strict=True):
            await worker.stop()
            await database.dispose()
    ids = [request.message_id for request in receiver.received]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert receiver.forged == []
