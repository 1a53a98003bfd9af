"""Logs are JSON lines; each request's lines carry a request id the server made up."""

from __future__ import annotations

import json

import httpx

from tests.support.pings import JSON_HEADERS
from tests.support.server import serve
from tests.support.stores import Store


def test_served_logs_are_json_with_a_server_made_request_id(store: Store) -> None:
    with serve({**store.env(), "CALLHOME_LOG_LEVEL": "info"}) as server:
        response = httpx.post(
            f"{server.base_url}/v1/ping",
            content=b'{"not": "a ping"}',
            headers={**JSON_HEADERS, "X-Request-ID": "client-chosen-id-1234"},
        )
        assert response.status_code == 422
        sent_id = response.headers["x-request-id"]
        output = server.stop()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "callhome.access"]
    ping_line = next(line for line in access if line.get("route") == "/v1/ping")
    assert ping_line["status"] == 422
    assert ping_line["method"] == "POST"
    assert ping_line["request_id"] == sent_id
    assert sent_id != "client-chosen-id-1234"
    assert "client-chosen-id-1234" not in output
    assert {"time", "level", "message"} <= ping_line.keys()
