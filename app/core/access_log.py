"""The access log that replaces uvicorn's: method, route, status, duration, never an address.
The same timing feeds the request latency metric."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import request_id

logger = logging.getLogger("callhome.access")

# Told each request's method, route template, status and duration in seconds.
RequestObserver = Callable[[str, str, int, float], None]

# Request ids need to be unique, not secret: a generator seeded once per process costs a
# fraction of a system call per request, and ids, unlike a counter, tell nothing of traffic.
_ids = random.Random()


def new_request_id() -> str:
    return f"{_ids.getrandbits(64):016x}"


class AccessLog:
    """Pure ASGI middleware, cheap enough for the ping path; off when INFO and metrics are.

    `quiet_status`: answers with this status are logged at DEBUG, not INFO. The ping's
    200s are the fleet's steady traffic (the metrics count them); a line each is noise in
    the log and a tenth of a ping's cost. Its refusals and failures still log at INFO.
    """

    def __init__(
        self, app: ASGIApp, observe: RequestObserver | None = None, quiet_status: int | None = None
    ):
        self.app = app
        self._observe = observe
        self._quiet_status = quiet_status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        logging_on = logger.isEnabledFor(logging.INFO)
        if scope["type"] != "http" or not (logging_on or self._observe):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        current = new_request_id()
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
            level = logging.DEBUG if status == self._quiet_status else logging.INFO
            if logging_on and logger.isEnabledFor(level):
                duration_ms = round(duration_s * 1000, 2)
                logger.log(
                    level,
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
