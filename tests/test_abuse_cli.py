"""The CLI twins: reports, machines, detect and audit see what the staff API sees."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from typer.testing import CliRunner

from app.cli import app as cli
from tests.support import app_parts
from tests.support.abuse import REPORTS
from tests.support.licences import create_licence
from tests.support.pings import ping
from tests.support.stores import Store

runner = CliRunner()


async def run(store: Store, *args: str, json_output: bool = True) -> Any:
    arguments = [*args, "--json"] if json_output else list(args)
    result = await asyncio.to_thread(runner.invoke, cli, arguments, env=store.env())
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if json_output else result.stdout


async def test_cli_detects_and_moves_reports_as_the_api_does(
    store: Store, client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    licence = await create_licence(client, app, max_machines=1)
    await ping(app, licence["key"], "pc-1")
    await ping(app, licence["key"], "pc-2")
    await app_parts.abuse(app).flush()
    swept = await run(store, "detect")
    assert swept["swept"] is True
    listed = await run(store, "reports", "list", "--kind", "machines_over_limit")
    [item] = listed["items"]
    api = (await client.get(REPORTS, headers=admin_headers)).json()
    assert api["items"] == listed["items"]

    shown = await run(store, "reports", "show", item["id"])
    assert len(shown["evidence"]["machines"]) == 2
    acked = await run(store, "reports", "ack", item["id"], "--note", "Called them")
    assert acked["status"] == "acknowledged"
    assert acked["events"][-1]["actor"] == "cli"
    resolved = await run(store, "reports", "resolve", item["id"], "--note", "Bought a seat")
    assert resolved["status"] == "resolved"
    after = (await client.get(f"{REPORTS}/{item['id']}", headers=admin_headers)).json()
    assert after == resolved

    exported = await run(store, "reports", "export", "--status", "resolved", json_output=False)
    api_csv = await client.get(
        f"{REPORTS}/export", params={"status": "resolved"}, headers=admin_headers
    )
    assert exported.splitlines() == api_csv.text.splitlines()

    machines = await run(store, "machines", "list", licence["id"])
    assert machines["total"] == 2
    oldest = machines["items"][-1]["machine_id"]
    retired = await run(store, "machines", "retire", licence["id"], oldest[:12])
    assert retired["retired_at"] is not None
    detail = (await client.get(f"/v1/admin/licences/{licence['id']}", headers=admin_headers)).json()
    assert [m["retired_at"] is not None for m in detail["machines"]] == [False, True]

    audit = await run(store, "audit", "--actor", "cli")
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
        result = await asyncio.to_thread(runner.invoke, cli, args, env=store.env())
        assert result.exit_code != 0, args
