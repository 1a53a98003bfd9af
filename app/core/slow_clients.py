"""Slow clients: a request's head and its body must each arrive in time, or the connection closes.

uvicorn bounds only the wait between requests on a kept-alive connection; a client that
sends half a request head, or half a body, would hold its connection (and on the ping a
task waiting for the rest) for ever. This protocol times both, and writes through
WholeAnswers (app/core/whole_answers.py) so that no answer leaves the process in halves.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.settings import Settings
from app.core.whole_answers import WholeAnswers


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read deadlines, whose answers
    leave in one send."""

    # Read from the settings once per worker process (uvicorn spawns workers afresh).
    _limits_s: ClassVar[tuple[float, float] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if BoundedHttpToolsProtocol._limits_s is None:
            settings = Settings()
            BoundedHttpToolsProtocol._limits_s = (
                settings.header_read_timeout_s,
                settings.body_read_timeout_s,
            )
        self._header_s, self._body_s = BoundedHttpToolsProtocol._limits_s
        # A request moves its deadline twice: setting a number is all that costs. The one
        # timer only fires at the deadline it was set for and then looks again, so it is
        # set afresh about once per deadline's length, not twice per request.
        self._deadline_at: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._deadline_at = self.loop.time() + seconds
        if self._timer is not None and self._timer.when() <= self._deadline_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(self._deadline_at, self._check_deadline)

    def _disarm(self) -> None:
        # The timer, if set, finds nothing due when it fires and lapses.
        self._deadline_at = None

    def _check_deadline(self) -> None:
        self._timer = None
        if self._deadline_at is None:
            return
        if self.loop.time() < self._deadline_at:
            self._timer = self.loop.call_at(self._deadline_at, self._check_deadline)
            return
        # Closing wakes the app's receive() with a disconnect, if it was waiting for a body.
        self._deadline_at = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, WholeAnswers(transport, self.loop)))
        self._arm(self._header_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self._header_s)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self._body_s)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
