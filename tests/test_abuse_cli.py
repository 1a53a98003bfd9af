"""The CLI twins: reports, machines, detect and audit see what the staff API sees."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from tests.support import app_parts
from tests.support.abuse import REPORTS
from tests.support.cli import callhome, callhome_json, invoke
from tests.support.licences import create_licence
from tests.support.pings import ping
from tests.support.stores import Store


async def test_cli_detects_and_moves_reports_as_the_api_does(
    store: Store, client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(client, app, max_machines=1)
    await ping(app, licence["key"], "pc-1")
    await ping(app, licence["key"], "pc-2")
    await app_parts.abuse(app).flush()
    swept = await callhome_json(store, "detect")
    assert swept["swept"] is True
    listed = await callhome_json(store, "reports", "list", "--kind", "machines_over_limit")
    [item] = listed["items"]
    api = (await client.get(REPORTS, headers=admin_headers)).json()
    assert api["items"] == listed["items"]

    shown = await callhome_json(store, "reports", "show", item["id"])
    assert len(shown["evidence"]["machines"]) == 2
    acked = await callhome_json(store, "reports", "ack", item["id"], "--note", "Called them")
    assert acked["status"] == "acknowledged"
    assert acked["events"][-1]["actor"] == "cli"
    resolved = await callhome_json(
        store, "reports", "resolve", item["id"], "--note", "Bought a seat"
    )
    assert resolved["status"] == "resolved"
    after = (await client.get(f"{REPORTS}/{item['id']}", headers=admin_headers)).json()
    assert after == resolved

    exported = await callhome(store, "reports", "export", "--status", "resolved")
    api_csv = await client.get(
        f"{REPORTS}/export", params={"status": "resolved"}, headers=admin_headers
    )
    assert exported.splitlines() == api_csv.text.splitlines()

    machines = await callhome_json(store, "machines", "list", licence["id"])
    assert machines["total"] == 2
    oldest = machines["items"][-1]["machine_id"]
    retired = await callhome_json(store, "machines", "retire", licence["id"], oldest[:12])
    assert retired["retired_at"] is not None
    detail = (await client.get(f"/v1/admin/licences/{licence['id']}", headers=admin_headers)).json()
    assert [m["retired_at"] is not None for m in detail["machines"]] == [False, True]

    audit = await callhome_json(store, "audit", "--actor", "cli")
    assert [entry["action"] for entry in audit["items"]] == [
        "machine.retire",
        "abuse_report.resolved",
        "abuse_report.acknowledged",
    ]


async def test_cli_refuses_bad_input(store: Store, client: httpx.AsyncClient, app: FastAPI) -> None:
    licence = await create_licence(client, app)
    for args in (
        ["reports", "ack", str(uuid.uuid4()), "--note", "x"],
        ["reports", "ack", "not-a-uuid", "--note", "x"],
        ["reports", "dismiss", str(uuid.uuid4()), "--note", "   "],
        ["reports", "list", "--kind", "nope"],
        ["machines", "retire", licence["id"], "XYZ"],
        ["machines", "retire", licence["id"], "0123456789ab"],
        ["audit", "--since", "soon"],
    ):
        result = await invoke(store, *args)
        assert result.exit_code != 0, args
