"""Logs are JSON lines; each request's lines carry a request id the server made up; the
ping's 200s, the fleet's steady traffic, log at DEBUG only."""

from __future__ import annotations

import json

import httpx

from tests.support.pings import JSON_HEADERS, ping_body
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


def access_lines(output: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    return [line for line in lines if line["logger"] == "callhome.access"]


def test_answered_pings_log_at_debug_only_and_other_routes_at_info(store: Store) -> None:
    ping = json.dumps(ping_body("NO-SUCH-LICENCE-KEY"))
    logged: dict[str, list[dict[str, object]]] = {}
    for level in ("info", "debug"):
        with serve({**store.env(), "CALLHOME_LOG_LEVEL": level}) as server:
            answered = httpx.post(f"{server.base_url}/v1/ping", content=ping, headers=JSON_HEADERS)
            assert answered.status_code == 200
            assert answered.headers["x-request-id"]
            assert httpx.get(f"{server.base_url}/v1/keys").status_code == 200
            logged[level] = access_lines(server.stop())
    at_info = {(line["route"], line["status"]) for line in logged["info"]}
    assert ("/v1/keys", 200) in at_info
    assert not any(route == "/v1/ping" for route, _ in at_info)
    assert ("/v1/ping", 200, "debug") in {
        (line["route"], line["status"], line["level"]) for line in logged["debug"]
    }
