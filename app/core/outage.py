"""The store unreachable, locked or too slow on any route: a 503 with Retry-After, not a 500."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import sqlalchemy.exc
from fastapi import FastAPI, Request
from starlette.responses import Response

from app.core.components import components_of
from app.core.errors import StoreUnavailable
from app.core.settings import Settings

logger = logging.getLogger("callhome.store")

# What reaching the store can raise: the driver's refusal to connect is a bare OSError,
# the pool's wait a TimeoutError of its own, everything the driver said a DBAPIError.
STORE_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.DBAPIError,
    sqlalchemy.exc.TimeoutError,
    OSError,
)

Render = Callable[[Request, Exception], Awaitable[Response]]


def is_store_trouble(error: BaseException) -> bool:
    """The store away or busy, as opposed to a statement at fault (that stays a 500)."""
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        return error.connection_invalidated or isinstance(
            error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError
        )
    return isinstance(error, STORE_ERRORS)


def install_store_trouble_handler(app: FastAPI, render: Render) -> None:
    """Answer store trouble on `app`'s routes as `render` renders a StoreUnavailable."""

    async def handle(request: Request, error: Exception) -> Response:
        if not is_store_trouble(error):
            raise error
        # One line, no traceback: an outage would otherwise write one per request.
        logger.warning("store unavailable (%s): answered 503", type(error).__name__)
        retry_after_s = components_of(request.app.state).get(Settings).retry_after_s
        return await render(request, StoreUnavailable(retry_after_s))

    for error_type in STORE_ERRORS:
        app.add_exception_handler(error_type, handle)
