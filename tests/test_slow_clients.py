"""Slow clients: half a request head or half a body no longer holds a connection open."""

from __future__ import annotations

import http.client
import socket
import time

import httpx

from tests.support.server import serve
from tests.support.stores import Store

DEADLINE_S = 0.5
LIMITS = {
    "CALLHOME_HEADER_READ_TIMEOUT_S": str(DEADLINE_S),
    "CALLHOME_BODY_READ_TIMEOUT_S": str(DEADLINE_S),
}


def _seconds_until_closed(base_url: str, sent: bytes) -> float:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        started = time.monotonic()
        if sent:
            connection.sendall(sent)
        while connection.recv(4096):
            pass  # whatever the server says before it hangs up
        return time.monotonic() - started


def test_slow_heads_and_bodies_are_cut_off_and_good_requests_still_served(
    store: Store,
) -> None:
    with serve({**store.env(), **LIMITS}) as server:
        # Connected, then silence; half a head; a whole head and half of its body.
        for sent in (
            b"",
            b"POST /v1/ping HTTP/1.1\r\nHost: x\r\nContent-Ty",
            b"POST /v1/ping HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 200\r\n\r\n{"licence_key":',
        ):
            assert _seconds_until_closed(server.base_url, sent) < DEADLINE_S + 5, sent
        # A kept-alive connection idle between requests is not cut by the head's deadline
        # while it waits, and a request sent at a normal pace is answered.
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            assert http.get("/healthz").status_code == 200
            time.sleep(DEADLINE_S * 2)
            assert http.get("/healthz").status_code == 200


def test_a_busy_kept_alive_connection_keeps_its_deadlines(store: Store) -> None:
    """Requests back to back for several deadlines' length are all served, and a half head
    sent afterwards on the same connection is still cut off in time."""
    with serve({**store.env(), **LIMITS}) as server:
        host, port = server.base_url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        served = 0
        started = time.monotonic()
        while time.monotonic() - started < DEADLINE_S * 4:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            served += 1
        assert served > 4
        assert connection.sock is not None
        connection.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        cut_at = time.monotonic()
        while connection.sock.recv(4096):
            pass
        assert time.monotonic() - cut_at < DEADLINE_S + 5
        connection.close()
