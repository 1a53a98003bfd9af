"""The access log that replaces uvicorn's: method, route, status, duration, never an address."""

from __future__ import annotations

import logging
import os
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import request_id

logger = logging.getLogger("callhome.access")


class AccessLog:
    """Pure ASGI middleware, cheap enough for the ping path; off when INFO is off."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        current = os.urandom(8).hex()
        token = request_id.set(current)
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", current.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            # The route template, not the path: a caller cannot write what it
            # likes into our logs. No query string and no client address.
            route = getattr(scope.get("route"), "path", "(no route)")
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            logger.info(
                "%s %s %d %.1fms",
                scope["method"],
                route,
                status,
                duration_ms,
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )
            request_id.reset(token)
