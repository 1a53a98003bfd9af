"""A change made by another process (the CLI) reaches a running server's verdicts within
about a second, on both stores: NOTIFY on PostgreSQL, the change counter on SQLite."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.support.cli import callhome_json
from tests.support.pings import JSON_HEADERS, ping_body
from tests.support.server import serve
from tests.support.stores import Store

# The poll runs every half second; a second and a half leaves room for a busy machine.
WITHIN_S = 1.5


async def _status(http: httpx.AsyncClient, key: str) -> str:
    response = await http.post("/v1/ping", json=ping_body(key), headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    status: str = response.json()["licence"]["status"]
    return status


async def test_a_suspension_from_the_command_line_reaches_a_running_server(store: Store) -> None:
    made = await callhome_json(store, "licences", "create", "--product", "mail")
    with serve(store.env()) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            # The server now holds the licence in its cache.
            assert await _status(http, made["key"]) == "valid"
            assert await _status(http, made["key"]) == "valid"
            await callhome_json(store, "licences", "suspend", made["id"])
            changed_at = time.monotonic()
            while (status := await _status(http, made["key"])) != "suspended":
                assert time.monotonic() - changed_at < WITHIN_S, f"still {status}"
                await asyncio.sleep(0.05)
            await callhome_json(store, "licences", "reinstate", made["id"])
            changed_at = time.monotonic()
            while (status := await _status(http, made["key"])) != "valid":
                assert time.monotonic() - changed_at < WITHIN_S, f"still {status}"
                await asyncio.sleep(0.05)
