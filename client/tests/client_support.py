"""Helpers the client tests share: canary values, a movable clock, a blocking async facade."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from callhome_client import AsyncClient, Verdict
from hostile_server import HostileServer

LICENCE_KEY = "CANARY-LICENCE-KEY-7f3e"
PRODUCT = "mailserver"
VERSION = "1.4.2"
COMPUTER_ID = "c0ffee" * 10 + "beef"
CLIENT_TIMEOUT_S = 0.3


class FakeClock:
    """A clock the test moves by hand; server and client share it."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).replace(microsecond=0)
        self.elapsed_s = 0.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        """The machine's monotonic clock: it runs with advance() and ignores set_back()."""
        return self.elapsed_s

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.elapsed_s += seconds

    def set_back(self, seconds: float) -> None:
        """Someone sets the wall clock back; time itself goes on."""
        self.now -= timedelta(seconds=seconds)

    def set_forward(self, seconds: float) -> None:
        """The wall clock jumps ahead (a flat battery, a wrong time zone); time itself does not."""
        self.now += timedelta(seconds=seconds)


class BlockingAsyncClient:
    """Drives an AsyncClient from plain test code on a private event loop."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self._loop = asyncio.new_event_loop()

    def check_in(self, **arguments: Any) -> Verdict:
        verdict: Verdict = self._loop.run_until_complete(self.client.check_in(**arguments))
        return verdict

    def close(self) -> None:
        self._loop.run_until_complete(self.client.aclose())
        self._loop.close()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        def blocking(*arguments: Any, **keywords: Any) -> Any:
            return self._loop.run_until_complete(attribute(*arguments, **keywords))

        return blocking


ClientFactory = Callable[..., Any]


def client_arguments(server: HostileServer, clock: FakeClock) -> dict[str, Any]:
    """The arguments of a client that trusts the test server and shares the test's clock."""
    return {
        "base_url": server.base_url,
        "licence_key": LICENCE_KEY,
        "product": PRODUCT,
        "version": VERSION,
        "public_keys": [server.public_key],
        "computer_id": COMPUTER_ID,
        "timeout": CLIENT_TIMEOUT_S,
        "clock": clock,
        "monotonic": clock.monotonic,
    }
