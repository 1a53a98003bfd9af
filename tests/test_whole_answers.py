"""An answer leaves a node in one send: a node killed mid-answer has sent all of it or
nothing, and the load balancer can retry nothing-sent elsewhere (deploy/haproxy.cfg).
Served by callhome's own uvicorn protocol on a real socket, as `callhome serve` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import uvicorn
from uvicorn.server import ServerState

from app.core.slow_clients import BoundedHttpToolsProtocol
from app.main import create_app
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.pings import JSON_HEADERS, ping_body, verify_signature
from tests.support.stores import Store

Sends = list[bytes]


@contextlib.asynccontextmanager
async def served(app: Callable[..., Any]) -> AsyncIterator[tuple[str, Sends]]:
    """The app behind callhome's protocol on a free port, and what each of its connections
    handed the kernel, send by send."""
    config = uvicorn.Config(app, http=BoundedHttpToolsProtocol, lifespan="off")
    config.load()
    state = ServerState()
    sends: Sends = []

    def protocol() -> BoundedHttpToolsProtocol:
        made = BoundedHttpToolsProtocol(config=config, server_state=state, app_state={})
        connection_made = made.connection_made

        def watched(transport: asyncio.Transport) -> None:
            write = transport.write

            def recorded(data: bytes | bytearray | memoryview) -> None:
                sends.append(bytes(data))
                write(data)

            transport.write = recorded  # type: ignore[method-assign]
            connection_made(transport)

        made.connection_made = watched  # type: ignore[method-assign]
        return made

    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", sends
    finally:
        server.close()
        await server.wait_closed()


async def test_a_pings_signed_answer_leaves_in_one_send(store: Store, clock: FrozenClock) -> None:
    app = create_app(store.settings, clock=clock)
    async with (
        app.router.lifespan_context(app),
        served(app) as (url, sends),
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        licence = await create_licence(http, app, max_machines=2)
        sends.clear()
        answered = await http.post(
            "/v1/ping", content=json.dumps(ping_body(licence["key"])), headers=JSON_HEADERS
        )
        assert answered.status_code == 200, answered.text
        verify_signature(app, answered)
        refused = await http.post("/v1/ping", content=b'{"licence_key": 1}', headers=JSON_HEADERS)
        assert refused.status_code == 422
    assert len(sends) == 2, [send[:40] for send in sends]
    for send, response in zip(sends, (answered, refused), strict=True):
        assert send.startswith(b"HTTP/1.1 %d " % response.status_code)
        assert send.endswith(b"\r\n\r\n" + response.content)


async def test_a_head_is_not_held_for_a_body_that_comes_later() -> None:
    """An answer whose body waits on something (as an export's rows do) has its head
    delivered meanwhile: here the body waits until the client has read the head."""
    head_read = asyncio.Event()

    async def streamed(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await head_read.wait()
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await send({"type": "http.response.body", "body": b"last"})

    async with (
        served(streamed) as (url, sends),
        httpx.AsyncClient(base_url=url, timeout=10) as http,
        http.stream("GET", "/") as response,
    ):
        head_read.set()
        body = await asyncio.wait_for(response.aread(), 10)
    assert response.status_code == 200
    assert body == b"firstlast"
    assert sends[0].startswith(b"HTTP/1.1 200 ") and sends[0].endswith(b"\r\n\r\n")
