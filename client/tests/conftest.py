"""Fixtures: the hostile server on a real socket, a movable clock, the sync and async clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callhome_client import AsyncClient, Client
from client_support import BlockingAsyncClient, ClientFactory, FakeClock, client_arguments
from hostile_server import HostileServer
from server_thread import closed_port_url, serve_in_thread


@pytest.fixture(scope="session")
def running_server() -> Iterator[HostileServer]:
    app = HostileServer(FakeClock())
    with serve_in_thread(app) as base_url:
        app.base_url = base_url
        yield app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(running_server: HostileServer, clock: FakeClock) -> HostileServer:
    """The hostile server, behaving well and sharing the test's clock until told otherwise."""
    running_server.reset(clock)
    return running_server


@pytest.fixture
def closed_url() -> str:
    return closed_port_url()


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "callhome-verdict.json"


@pytest.fixture(params=["sync", "async"])
def make_client(
    request: pytest.FixtureRequest, server: HostileServer, clock: FakeClock, cache_path: Path
) -> Iterator[ClientFactory]:
    """Builds a Client, or an AsyncClient behind a blocking facade, pointed at the server."""
    created: list[Any] = []

    def factory(**overrides: Any) -> Any:
        arguments = {**client_arguments(server, clock), "cache_path": cache_path, **overrides}
        if request.param == "sync":
            client: Any = Client(**arguments)
        else:
            client = BlockingAsyncClient(AsyncClient(**arguments))
        created.append(client)
        return client

    yield factory
    for client in created:
        client.close()
