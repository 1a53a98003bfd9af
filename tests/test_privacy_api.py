"""A licence's export and erasure through the staff API and the CLI, and the public
privacy manifest: walked from one inventory, checked against full dumps of the store."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import func, select

from app.abuse.models import AbuseSuspect, ReportKind
from app.core import auth
from app.core.audit import AuditEntry
from app.ingest.writer import BatchWriter, PingRecord
from app.licences.models import Seat
from app.main import create_app
from app.privacy import requests as erasure_requests
from app.privacy.export import linked_tables
from app.privacy.inventory import INVENTORY, OnErasure
from app.privacy.maintenance import run_maintenance
from app.privacy.repository import rows_about
from tests.support import app_parts
from tests.support.abuse import REPORTS, detect, make_report
from tests.support.cli import callhome, invoke
from tests.support.clocks import FrozenClock
from tests.support.dumps import count_pings, full_dump
from tests.support.licences import create_licence
from tests.support.pings import computer_id, ping, this_machine
from tests.support.stores import Store
from tests.support.tokens import staff_headers
from tests.support.webhooks import hand_turned_worker

LICENCES = "/v1/admin/licences"


@dataclass
class Seeded:
    id: str
    key: str
    machine_ids: list[str]

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(self.id)

    def traces(self) -> list[str]:
        """How this licence's machines could show in a dump: in full and as staff see them."""
        return [*self.machine_ids, *(machine_id[:12] for machine_id in self.machine_ids)]


async def seed(client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock) -> Seeded:
    """A licence with a row in every table that can be about a licence: machines (one
    retired), pings, a rollup, reports with notes, a suspect, audit entries and the key
    holder's erasure request."""
    licence = await create_licence(client, app, max_machines=1)
    await ping(app, licence["key"], "pc-1", address="203.0.113.7")
    await ping(app, licence["key"], "pc-2", address="198.51.100.9")
    await detect(app)
    report = await make_report(app, licence["id"], ReportKind.MACHINE_CHURN, figure=30)
    writer = await staff_headers(app, auth.Scope.REPORTS_WRITE, auth.Scope.LICENCES_WRITE)
    noted = await client.patch(
        f"{REPORTS}/{report.id}", json={"status": "acknowledged", "note": "Asked"}, headers=writer
    )
    assert noted.status_code == 200, noted.text
    async with app_parts.database(app).sessions() as session, session.begin():
        session.add(
            AbuseSuspect(
                licence_id=uuid.UUID(licence["id"]),
                kind=ReportKind.USERS_OVER_LIMIT.value,
                noted_at=clock.now(),
                figure=3,
            )
        )
        await erasure_requests.request_erasure(session, uuid.UUID(licence["id"]), clock.now())
    machine_ids = [
        app_parts.pseudonyms(app).machine_id(uuid.UUID(licence["id"]), computer)
        for computer in (computer_id("pc-1"), computer_id("pc-2"))
    ]
    retired = await client.delete(
        f"{LICENCES}/{licence['id']}/machines/{machine_ids[1][:12]}", headers=writer
    )
    assert retired.status_code == 200, retired.text
    return Seeded(licence["id"], licence["key"], machine_ids)


async def seed_two(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> tuple[Seeded, Seeded]:
    """Two licences, each with pings on two days, the first day rolled up."""
    clock.current = clock.current.replace(hour=10, minute=0, second=0)
    first, second = await seed(client, app, clock), await seed(client, app, clock)
    clock.advance(days=1)
    for licence in (first, second):
        await ping(app, licence.key, "pc-1", address="203.0.113.7")
    report = await run_maintenance(app_parts.database(app), app_parts.settings(app), clock.now())
    assert report.days_rolled_up >= 1
    return first, second


async def rows_held(app: FastAPI, licence_id: uuid.UUID) -> dict[str, int]:
    """Rows about the licence in each table the inventory links to a licence."""
    counts = {}
    async with app_parts.database(app).sessions() as session:
        for table, link, sql_table in linked_tables():
            query = rows_about(sql_table, link, licence_id).order_by(None)
            counts[table.name] = int(
                await session.scalar(select(func.count()).select_from(query.subquery())) or 0
            )
    return counts


def exported_counts(document: dict[str, Any]) -> dict[str, int]:
    """Records of each table in an export, nested ones (a report's events) included."""
    counts = {}
    for table, link, _ in linked_tables():
        if link.nested_in is not None:
            parents = document[_export_key_of(link.nested_in.parent)]
            parents = [parents] if isinstance(parents, dict) else parents
            counts[table.name] = sum(len(parent[link.nested_in.key]) for parent in parents)
        elif isinstance(document[link.export_key], dict):
            counts[table.name] = 1
        else:
            counts[table.name] = len(document[link.export_key])
    return counts


def _export_key_of(table_name: str) -> str:
    [key] = [t.licence.export_key for t in INVENTORY if t.name == table_name and t.licence]
    return key


async def test_export_holds_every_row_about_the_licence_and_nothing_else(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    first, second = await seed_two(client, app, clock)
    held = await rows_held(app, first.uuid)
    assert all(count > 0 for count in held.values()), held  # every kind is seeded

    reader = await staff_headers(app, auth.Scope.LICENCES_READ, name="dpo")
    response = await client.get(f"{LICENCES}/{first.id}/export", headers=reader)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert list(document) == [
        "licence", "machines", "pings", "rollups", "reports", "suspects", "audit",
        "erasure_requests", "events",
    ]  # fmt: skip
    assert "licence.created" in {event["type"] for event in document["events"]}
    assert exported_counts(document) == held
    assert document["licence"]["id"] == first.id
    assert sorted(m["machine_id"] for m in document["machines"]) == sorted(first.machine_ids)
    assert {p["machine_id"] for p in document["pings"]} == set(first.machine_ids)
    assert [r["pings"] for r in document["rollups"]] == [2]
    assert any(e["note"] == "Asked" for r in document["reports"] for e in r["events"])
    assert {entry["action"] for entry in document["audit"]} >= {
        "licence.create", "machine.retire", "abuse_report.acknowledged",
    }  # fmt: skip
    for trace in [second.id, second.uuid.hex, *second.traces()]:
        assert trace not in response.text

    async with app_parts.database(app).sessions() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "licence.export")
        )
    assert entry is not None and entry.actor == "dpo" and entry.target_id == first.id
    assert entry.detail == {
        "exported": {key: len(document[key]) for key in document} | {"licence": 1}
    }


async def test_export_refuses_bad_requests(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(client, app)
    url = f"{LICENCES}/{licence['id']}/export"
    unknown = await client.get(f"{LICENCES}/{uuid.uuid4()}/export", headers=admin_headers)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    malformed = await client.get(f"{LICENCES}/not-a-licence/export", headers=admin_headers)
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == "application/problem+json"
    assert (await client.get(url)).status_code == 401
    wrong_scope = await staff_headers(app, auth.Scope.REPORTS_READ)
    assert (await client.get(url, headers=wrong_scope)).status_code == 403
    async with app_parts.database(app).sessions() as session:
        exports = await session.scalar(
            select(func.count()).where(AuditEntry.action == "licence.export")
        )
    assert exports == 0


def dump_rows_mentioning(dump: str, *traces: str) -> set[str]:
    """Tables of the dump's row lines ("table: (...)") that mention any of `traces`."""
    tables = {table.name for table in INVENTORY}
    found = set()
    for line in dump.splitlines():
        table, _, rest = line.partition(": (")
        if table in tables and rest and any(trace in line for trace in traces):
            found.add(table)
    return found


# What erasing a licence's use keeps unless the licence is deleted too: the licence and
# the key that opens it.
def the_licence() -> set[str]:
    return {
        table.name
        for table in INVENTORY
        if table.licence and table.licence.on_erasure is OnErasure.KEEP_UNLESS_ASKED
    }


def test_the_licence_is_its_row_and_its_key() -> None:
    assert the_licence() == {"licences", "licence_keys"}


@pytest.mark.parametrize("delete_licence", [False, True])
async def test_erasure_leaves_nothing_of_the_licences_use(
    store: Store,
    client: httpx.AsyncClient,
    app: FastAPI,
    clock: FrozenClock,
    delete_licence: bool,
) -> None:
    first, second = await seed_two(client, app, clock)
    kept_of_second = await rows_held(app, second.uuid)
    eraser = await staff_headers(app, auth.Scope.PRIVACY_WRITE, name="dpo")
    url = f"{LICENCES}/{first.id}/data" + ("?delete_licence=true" if delete_licence else "")
    response = await client.delete(url, headers=eraser)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["licence_deleted"] is delete_licence
    assert body["erased"]["pings"] == 3 and body["erased"]["machines"] == 2
    assert body["erased"]["daily_usage"] == 1 and body["erased"]["abuse_report_events"] >= 2
    assert body["scrubbed"]["audit_log"] >= 2  # the retirement and the report's change

    dump = await full_dump(store)
    for trace in first.traces():
        assert trace not in dump
    allowed = {"audit_log"} | (set() if delete_licence else the_licence())
    assert dump_rows_mentioning(dump, first.id, repr(first.uuid)) <= allowed
    assert await rows_held(app, second.uuid) == kept_of_second
    held = await rows_held(app, first.uuid)
    for table in the_licence():
        assert held.pop(table) == (0 if delete_licence else 1), table
    assert held.pop("audit_log") >= 1
    assert set(held.values()) == {0}

    async with app_parts.database(app).sessions() as session:
        entries = {
            entry.action: entry
            for entry in await session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()))
        }
    erasure = entries["licence.erase"]
    assert erasure.actor == "dpo" and erasure.target_id == first.id
    assert erasure.detail == {
        "erased": body["erased"], "scrubbed": body["scrubbed"], "licence_deleted": delete_licence
    }  # fmt: skip
    assert all(isinstance(count, int) for count in erasure.detail["erased"].values())
    # A staff action stays on record, without the use data it named.
    assert entries["machine.retire"].detail == {"erased": ["machine"]}
    acked = entries["abuse_report.acknowledged"].detail
    assert "kind" not in acked and acked["to"] == "acknowledged"


async def test_after_erasure_the_hot_path_sees_no_erased_machine(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    licence = await create_licence(client, app, max_machines=2)
    await ping(app, licence["key"], "pc-1")
    answer = await ping(app, licence["key"], "pc-2")
    assert answer["licence"]["machines"]["active"] == 2
    eraser = await staff_headers(app, auth.Scope.PRIVACY_WRITE)
    url = f"{LICENCES}/{licence['id']}/data"
    assert (await client.delete(url, headers=eraser)).status_code == 200
    # A cache still holding both seats would count pc-2 too, without asking the store.
    again = await ping(app, licence["key"], "pc-1")
    assert again["licence"]["machines"] == {
        "allowed": 2, "active": 1, "over_limit": False, "seat": "granted",
        "this_machine": this_machine(app, licence["id"], "pc-1"), "floating": False,
    }  # fmt: skip


async def test_a_batch_with_a_ping_of_a_deleted_licence_stores_the_others(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    """A ping that passed the cache just before its licence was deleted reaches the batch
    writer after the deletion: the other pings in its batch are stored all the same."""
    first, second = await seed_two(client, app, clock)
    eraser = await staff_headers(app, auth.Scope.PRIVACY_WRITE)
    erased = await client.delete(f"{LICENCES}/{first.id}/data?delete_licence=true", headers=eraser)
    assert erased.status_code == 200
    writer = BatchWriter(app_parts.database(app).engine, max_batch=10, timeout_s=5, retry_after_s=1)
    writer.start()
    try:
        late, other = (
            writer.submit(record(licence.uuid, licence.machine_ids[0], clock.now()))
            for licence in (first, second)
        )
        await asyncio.wait([late, other])
    finally:
        await writer.stop()
    assert other.exception() is None
    assert (await rows_held(app, first.uuid))["pings"] == 0
    assert (await rows_held(app, first.uuid))["machines"] == 0


def record(licence_id: uuid.UUID, machine_id: str, now: dt.datetime) -> PingRecord:
    return PingRecord(
        licence_id=licence_id,
        received_at=now,
        machine_id=machine_id,
        net_id="0123456789abcdef",
        product="mail",
        version="8.2.1",
        channel="stable",
        user_count=3,
        signatures=None,
        status="valid",
        seat=Seat.GRANTED.value,
    )


async def test_erasure_refuses_bad_requests_and_erases_nothing(
    store: Store, client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    first, _ = await seed_two(client, app, clock)
    url = f"{LICENCES}/{first.id}/data"
    before = await rows_held(app, first.uuid)
    everything_but_privacy = await staff_headers(
        app, *(scope for scope in auth.Scope if scope != auth.Scope.PRIVACY_WRITE)
    )
    eraser = await staff_headers(app, auth.Scope.PRIVACY_WRITE)
    refusals = [
        (await client.delete(url), 401),
        (await client.delete(url, headers=everything_but_privacy), 403),
        (await client.delete(f"{LICENCES}/{uuid.uuid4()}/data", headers=eraser), 404),
        (await client.delete(f"{LICENCES}/12345/data", headers=eraser), 422),
        (await client.delete(f"{url}?delete_licence=maybe", headers=eraser), 422),
    ]
    for response, status in refusals:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert await rows_held(app, first.uuid) == before
    assert await count_pings(store.url) == 6


async def test_cli_exports_and_erases(
    store: Store, client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock, tmp_path: Path
) -> None:
    first, second = await seed_two(client, app, clock)
    # The delivery worker marks events planned in the background: settled first, so both
    # exports see the same rows.
    async with hand_turned_worker(app) as worker:
        await worker.run_once()
    reader = await staff_headers(app, auth.Scope.LICENCES_READ)
    from_api = (await client.get(f"{LICENCES}/{first.id}/export", headers=reader)).json()

    printed = json.loads(await callhome(store, "privacy", "export", first.id))
    output = tmp_path / "export.json"
    assert await callhome(store, "privacy", "export", first.id, "--output", str(output)) == ""
    # The API's export is audited before the CLI's: the CLI's holds one more entry.
    assert printed == json.loads(output.read_text()) | {"audit": printed["audit"]}
    assert printed | {"audit": []} == from_api | {"audit": []}
    assert len(printed["audit"]) == len(from_api["audit"]) + 1

    erased = json.loads(
        await callhome(store, "privacy", "erase", first.id, "--delete-licence", "--json")
    )
    assert erased["licence_deleted"] is True and erased["erased"]["pings"] == 3
    for trace in first.traces():
        assert trace not in await full_dump(store)
    assert (await rows_held(app, second.uuid))["pings"] == 3
    missing = await invoke(store, "privacy", "export", first.id)
    assert missing.exit_code == 1 and "No such licence" in missing.output


async def test_manifest_lists_every_stored_field_with_live_retention(store: Store) -> None:
    settings = store.settings.model_copy(
        update={"ping_retention_days": 12, "machine_retention_days": 90}
    )
    application = create_app(settings)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
        response = await http.get("/v1/privacy")
    assert response.status_code == 200
    manifest = response.json()
    assert "pseudonymous, not anonymous" in manifest["pseudonymous_not_anonymous"]
    listed = {
        (table["table"], field["name"]) for table in manifest["tables"] for field in table["fields"]
    }
    assert listed == {(table.name, column) for table in INVENTORY for column in table.columns}
    tables = {table["table"]: table for table in manifest["tables"]}
    assert tables["pings"]["retention"]["days"] == 12
    assert tables["pings"]["retention"]["setting"] == "CALLHOME_PING_RETENTION_DAYS"
    assert {field["retention_days"] for field in tables["pings"]["fields"]} == {12}
    assert tables["machines"]["retention"]["days"] == 90
    assert tables["daily_usage"]["retention"]["days"] == 2190
    assert tables["day_keys"]["retention"]["days"] == 2
    machine_id = next(f for f in tables["machines"]["fields"] if f["name"] == "machine_id")
    assert machine_id["form"] == "pseudonymous"
    net_id = next(f for f in tables["pings"]["fields"] if f["name"] == "net_id")
    assert net_id["form"] == "anonymous after 48 h"
    assert tables["pings"]["on_erasure"] == "deleted"


def _declared_pattern(name: str) -> re.Pattern[str]:
    """A declared name with `<placeholders>` as a pattern of what it stands for."""
    parts = re.split(r"<[^>]+>", name)
    return re.compile("[^:]+".join(re.escape(part) for part in parts))


async def test_manifest_says_what_pseudonymous_means_and_declares_what_is_kept_elsewhere(
    store: Store, clock: FrozenClock, redis_url: str
) -> None:
    settings = store.settings.model_copy(update={"rate_limit_redis_url": redis_url})
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
            licence = await create_licence(http, application)
            await ping(application, licence["key"], "pc-1")
            await app_parts.rate_limiter(application).run_round(clock.now())
            manifest = (await http.get("/v1/privacy")).json()
    assert "keeps no personal data" not in manifest["summary"]
    for words in ("no directly identifying data", "pseudonymous data", "Recital 26"):
        assert words in manifest["summary"]
    elsewhere = {kept["name"]: kept for kept in manifest["elsewhere"]}
    assert all(kept["retention"]["rule"] for kept in elsewhere.values())
    assert {"alembic_version", "access log", "pseudonym.key", "signing-key.pem"} <= set(elsewhere)
    assert {"process_*", "python_*"} <= {metric["name"] for metric in manifest["metrics"]}

    # Every key the shared rate limits wrote to Redis is of a declared kind.
    with redis.Redis.from_url(redis_url) as client:
        written = [key.decode() for key in client.scan_iter("callhome:rate:*")]
    patterns = [_declared_pattern(name) for name in elsewhere if name.startswith("callhome:")]
    assert {"licence", "network"} <= {key.split(":")[2] for key in written}
    assert all(any(p.fullmatch(key) for p in patterns) for key in written), written
    # Every file the server keeps in its data directory is declared by name.
    files = [path.name for path in store.settings.data_dir.iterdir()]
    assert files
    assert all(any(name in kept for kept in elsewhere) for name in files), files
