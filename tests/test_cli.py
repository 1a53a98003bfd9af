"""The CLI and the staff API are two faces of the same services."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.abuse.models import ReportKind
from app.core.settings import Settings
from app.core.signing import signer_from_pem
from tests.support.abuse import make_report
from tests.support.cli import callhome_json, invoke
from tests.support.pings import ping_body, send_ping
from tests.support.stores import Store


async def test_cli_and_api_see_the_same_licences(
    store: Store, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    made = await callhome_json(
        store,
        "licences", "create", "--product", "mail", "--max-machines", "4",
        "--expires", "2027-03-01", "--entitlement", "spam", "--entitlement", "antivirus",
        "--overage", "deny",
    )  # fmt: skip
    assert made["key"]
    shown = await client.get(f"/v1/admin/licences/{made['id']}", headers=admin_headers)
    assert shown.status_code == 200
    assert shown.json() | {"key": made["key"]} == made | {"machines": [], "machines_total": 0}
    assert shown.json()["expires_at"] == "2027-03-01T00:00:00Z"
    assert shown.json()["entitlements"] == ["antivirus", "spam"]

    response = await client.post(
        "/v1/admin/licences",
        json={"product": "fax", "key": "FAX-KEY-123456-ABCD"},
        headers=admin_headers,
    )
    by_key = await callhome_json(store, "licences", "show", "fax-key-123456-abcd")
    assert by_key["id"] == response.json()["id"]
    listed = await callhome_json(store, "licences", "list", "--product", "fax")
    assert [item["id"] for item in listed["items"]] == [response.json()["id"]]

    suspended = await callhome_json(store, "licences", "suspend", made["id"])
    assert suspended["status"] == "suspended"
    after = await client.get(f"/v1/admin/licences/{made['id']}", headers=admin_headers)
    assert after.json()["status"] == "suspended"
    extended = await callhome_json(
        store, "licences", "extend", made["id"], "--expires", "2028-01-01"
    )
    assert extended["expires_at"] == "2028-01-01T00:00:00Z"


async def test_cli_token_opens_the_api_until_revoked(
    store: Store, client: httpx.AsyncClient
) -> None:
    issued = await callhome_json(
        store, "tokens", "create", "--scope", "licences:read", "--name", "support-anna"
    )
    headers = {"Authorization": f"Bearer {issued['token']}"}
    assert (await client.get("/v1/admin/licences", headers=headers)).status_code == 200
    listed = await callhome_json(store, "tokens", "list")
    assert [token["name"] for token in listed["items"]] == ["support-anna"]
    assert issued["token"] not in json.dumps(listed)
    await callhome_json(store, "tokens", "revoke", issued["id"])
    assert (await client.get("/v1/admin/licences", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    "args",
    [
        ["licences", "create", "--product", "Not A Product"],
        ["licences", "create", "--product", "mail", "--max-machines", "0"],
        ["licences", "create", "--product", "mail", "--expires", "soon"],
        ["licences", "create", "--product", "mail", "--overage", "ignore"],
        ["tokens", "create", "--scope", "everything"],
        ["licences", "show", "00000000-0000-0000-0000-000000000000"],
    ],
)
async def test_cli_refuses_bad_input_and_writes_nothing(store: Store, args: list[str]) -> None:
    result = await invoke(store, *args)
    assert result.exit_code != 0
    counts = await callhome_json(store, "stats")
    assert counts["licences"] == 0


async def test_stats_counts_what_the_store_holds(
    store: Store, client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    created = await callhome_json(store, "licences", "create", "--product", "mail")
    assert await callhome_json(store, "stats") == {
        "licences": 1, "machines": 0, "pings": 0, "open_reports": 0,
    }  # fmt: skip
    await make_report(app, created["id"], ReportKind.MACHINE_CHURN, figure=30, allowed=10)
    await send_ping(client, app, ping_body(created["key"]))
    assert await callhome_json(store, "stats") == {
        "licences": 1, "machines": 1, "pings": 1, "open_reports": 1,
    }  # fmt: skip


async def test_cli_shows_and_filters_expired_licences(store: Store) -> None:
    ended = await callhome_json(
        store, "licences", "create", "--product", "mail", "--expires", "2020-01-01"
    )
    running = await callhome_json(store, "licences", "create", "--product", "mail")

    assert ended["status"] == "expired" and running["status"] == "active"
    expired = await callhome_json(store, "licences", "list", "--status", "expired")
    assert [item["id"] for item in expired["items"]] == [ended["id"]]
    active = await callhome_json(store, "licences", "list", "--status", "active")
    assert [item["id"] for item in active["items"]] == [running["id"]]
    listed = await invoke(store, "licences", "list")
    assert f"{ended['id']}  mail" in listed.stdout and "expired" in listed.stdout


async def test_cli_refuses_a_weak_custom_key(store: Store) -> None:
    result = await invoke(store, "licences", "create", "--product", "mail", "--key", "ABCD-EFGH")

    assert result.exit_code == 1
    assert "at least 16 characters" in result.stderr
    assert (await callhome_json(store, "licences", "list"))["items"] == []


@pytest.mark.parametrize(
    "command",
    [("licences", "create"), ("releases", "publish"), ("feeds", "publish")],
)
async def test_help_keeps_the_name_patterns(store: Store, command: tuple[str, ...]) -> None:
    """Rich markup would read `[a-z0-9-]` as a style tag and drop it."""
    result = await invoke(store, *command, "--help")

    assert result.exit_code == 0
    assert "[a-z0-9-]{1,32}" in result.stdout


async def test_keys_generate_writes_a_private_key_file_and_prints_its_id(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "signing.pem"

    made = await callhome_json(store, "keys", "generate", str(path))

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    signer = signer_from_pem(path.read_bytes())
    assert made == {
        "keyid": signer.key_id,
        "algorithm": "ed25519",
        "public_key": signer.public_key_b64,
    }
    before = path.read_bytes()
    again = await invoke(store, "keys", "generate", str(path))
    assert again.exit_code == 1 and "never overwritten" in again.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "command", [("licences", "list"), ("keys", "show"), ("maintain",), ("stats",)]
)
async def test_a_command_away_from_the_store_names_it_and_creates_none(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    elsewhere = Store("sqlite", Settings(data_dir=tmp_path / "var"))

    result = await invoke(elsewhere, *command)

    assert result.exit_code == 1
    assert f"no callhome store at {tmp_path / 'var' / 'callhome.sqlite3'}" in result.stderr
    assert "CALLHOME_DATA_DIR" in result.stderr
    assert not (tmp_path / "var").exists()


async def test_init_creates_the_embedded_store_and_later_commands_use_it(tmp_path: Path) -> None:
    fresh = Store("sqlite", Settings(data_dir=tmp_path / "var"))

    made = await callhome_json(fresh, "init")

    assert (tmp_path / "var" / "callhome.sqlite3").exists()
    listed = await callhome_json(fresh, "licences", "list")
    assert [item["id"] for item in listed["items"]] == [made["licence_id"]]
