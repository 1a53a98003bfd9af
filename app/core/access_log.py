"""The access log that replaces uvicorn's: method, route, status, duration, never an address.
The same timing feeds the request latency metric."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import request_id

logger = logging.getLogger("callhome.access")

# Told each request's method, route template, status and duration in seconds.
RequestObserver = Callable[[str, str, int, float], None]


class AccessLog:
    """Pure ASGI middleware, cheap enough for the ping path; off when INFO and metrics are."""

    def __init__(self, app: ASGIApp, observe: RequestObserver | None = None):
        self.app = app
        self._observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        logging_on = logger.isEnabledFor(logging.INFO)
        if scope["type"] != "http" or not (logging_on or self._observe):
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
            duration_s = time.perf_counter() - started
            if self._observe is not None:
                self._observe(scope["method"], route, status, duration_s)
            if logging_on:
                duration_ms = round(duration_s * 1000, 2)
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
