"""The access log that replaces uvicorn's: method, route, status, duration, never an address."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("callhome.access")


class AccessLog:
    """Pure ASGI middleware: cheap enough for the ping path."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            # The route template, not the path: a caller cannot write what it
            # likes into our logs. No query string and no client address.
            route = scope.get("route")
            logger.info(
                "%s %s %d %.1fms",
                scope["method"],
                getattr(route, "path", "(no route)"),
                status,
                (time.perf_counter() - started) * 1000,
            )
