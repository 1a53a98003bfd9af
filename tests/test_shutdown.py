"""SIGTERM under load: the server stops taking pings, drains the batch writer, and every
ping it acknowledged is stored."""

from __future__ import annotations

import asyncio
import json
import signal
import threading

import httpx

from app.core import auth
from tests.support.dumps import count_pings
from tests.support.pings import JSON_HEADERS, ping_body
from tests.support.server import serve
from tests.support.stores import Store
from tests.support.tokens import bearer, staff_token


def test_sigterm_under_load_loses_nothing_acknowledged(store: Store) -> None:
    with serve(store.env()) as server:
        created = httpx.post(
            f"{server.base_url}/v1/admin/licences",
            json={"product": "mail", "max_machines": 100},
            headers=bearer(staff_token(store, auth.Scope.LICENCES_WRITE)),
        )
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        acknowledged = 0
        refused = 0
        lock = threading.Lock()
        stop = threading.Event()

        def hammer(worker: int) -> None:
            nonlocal acknowledged, refused
            with httpx.Client(base_url=server.base_url, timeout=10) as http:
                n = 0
                while not stop.is_set():
                    n += 1
                    body = json.dumps(ping_body(key, machine=f"w{worker}-{n % 50}"))
                    try:
                        status = http.post(
                            "/v1/ping", content=body, headers=JSON_HEADERS
                        ).status_code
                    except httpx.TransportError:
                        status = 0
                    with lock:
                        if status == 200:
                            acknowledged += 1
                        else:
                            refused += 1
                    if status == 0:
                        return

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        while True:
            with lock:
                if acknowledged >= 200:
                    break
        server.process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        output = server.stop()
    assert "Application shutdown complete" in output
    assert acknowledged >= 200
    assert asyncio.run(count_pings(store.url)) >= acknowledged
