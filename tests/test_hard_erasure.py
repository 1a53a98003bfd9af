"""Erasure is hard: once maintenance has run after it, the erased machine ids and staff
notes are gone from the raw table and index files, not only from queries and dumps."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from fastapi import FastAPI

from app.abuse.models import ReportKind
from app.ingest.repository import ping_partitions
from app.privacy.maintenance import MaintenanceReport, run_maintenance
from tests.support import app_parts
from tests.support.abuse import make_report
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import computer_id, ping
from tests.support.rawfiles import store_bytes
from tests.support.stores import Store

NOTE = "customer-Ingrid-Zeller-called-0173"
TABLES = ["licences", "machines", "abuse_reports", "abuse_report_events", "audit_log"]


async def relations(app: FastAPI) -> list[str]:
    """The tables erasure touches, and on PostgreSQL every day partition of the pings."""
    database = app_parts.database(app)
    if database.dialect != "postgresql":
        return TABLES
    async with database.engine.connect() as connection:
        partitions = await ping_partitions(connection)
    return [*TABLES, *partitions.values()]


async def traces_held(store: Store, app: FastAPI, traces: list[bytes]) -> list[bytes]:
    held = await store_bytes(store, app, await relations(app))
    return [trace for trace in traces if trace in held]


async def maintain(app: FastAPI, clock: FrozenClock) -> MaintenanceReport:
    settings = app_parts.settings(app).model_copy(
        update={"ping_retention_days": 400, "machine_retention_days": 400}
    )
    report = await run_maintenance(app_parts.database(app), settings, clock.now())
    assert report.ran
    return report


async def test_erased_rows_leave_the_table_and_index_files(
    store: Store,
    client: httpx.AsyncClient,
    app: FastAPI,
    clock: FrozenClock,
    admin_headers: dict[str, str],
) -> None:
    day0 = dt.datetime.combine(clock.now().date(), dt.time(9), tzinfo=dt.UTC)
    clock.current = day0
    erased = await create_licence(client, app, max_machines=2)
    kept = await create_licence(client, app, max_machines=2)
    for licence in (erased, kept):
        await ping(app, licence["key"], "pc-1")
        await ping(app, licence["key"], "pc-2")
    clock.current = day0 + dt.timedelta(days=1, hours=3)
    await ping(app, erased["key"], "pc-1")
    await ping(app, kept["key"], "pc-1")
    pseudonyms = app_parts.pseudonyms(app)
    machine_ids = [
        pseudonyms.machine_id(uuid.UUID(erased["id"]), computer_id(pc)) for pc in ("pc-1", "pc-2")
    ]
    report = await make_report(app, erased["id"], ReportKind.MACHINES_OVER_LIMIT, figure=3)
    noted = await client.patch(
        f"/v1/admin/abuse-reports/{report.id}",
        json={"status": "acknowledged", "note": NOTE},
        headers=admin_headers,
    )
    assert noted.status_code == 200, noted.text
    retired = await client.delete(
        f"/v1/admin/licences/{erased['id']}/machines/{machine_ids[1][:12]}", headers=admin_headers
    )
    assert retired.status_code == 200, retired.text
    # The short id is the start of the full one: finding it finds both.
    traces = [NOTE.encode(), *(machine_id[:12].encode() for machine_id in machine_ids)]
    assert await traces_held(store, app, traces) == traces

    response = await client.delete(
        f"/v1/admin/licences/{erased['id']}/data?delete_licence=true", headers=admin_headers
    )
    assert response.status_code == 200, response.text
    if store.kind == "postgresql":
        # Gone from every query, yet still in the files: this is what maintenance ends.
        assert await traces_held(store, app, traces) == traces

    # The next day, once no batch can write to the erasure's day any more.
    clock.current = day0 + dt.timedelta(days=2, minutes=15)
    report_after = await maintain(app, clock)
    assert await traces_held(store, app, traces) == []
    assert report_after.rewrites_pending == 0
    again = await maintain(app, clock)
    assert again.relations_rewritten == 0
    kept_machine = pseudonyms.machine_id(uuid.UUID(kept["id"]), computer_id("pc-1"))
    assert kept_machine[:12].encode() in await store_bytes(store, app, await relations(app))
