"""Rate limits on every call that names a licence key, per licence (key_hash) and per
network.

The network limit names a network by an HMAC of its prefix under its own key, derived
from the pseudonym key and held in memory only, so every node names it alike.

Each limit counts pings in hourly windows and estimates the last sixty minutes
as this hour's count plus the previous hour's, weighted by how much of it is
still inside them. Counts are kept by pseudonym only, in memory, for at most
`rate_limit_entries` pseudonyms per limit: the least recently seen go first,
and ones idle for two windows are dropped by the background round.

With Redis configured, nodes share their counts: a ping only counts locally,
and every `rate_limit_sync_s` a background round adds each node's new counts
to Redis (INCRBY per pseudonym and window) and reads the shared totals back.
A ping never waits on Redis; while Redis is away each node limits on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import logging
import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Annotated, Final

from fastapi import Depends, Request

from app.core import metrics
from app.core.clock import Clock
from app.core.components import component
from app.core.deps import Now, SettingsDep
from app.core.errors import RateLimited
from app.core.network import caller_address
from app.core.pseudonyms import network_prefix
from app.core.settings import Settings

if TYPE_CHECKING:
    import redis.asyncio as redis

logger = logging.getLogger("callhome.ratelimit")

WINDOW_S: Final = 3600
REDIS_TIMEOUT_S: Final = 2.0


class Window:
    """Pings of one pseudonym in the current window and the one before it."""

    __slots__ = ("current", "index", "previous")

    def __init__(self, index: int):
        self.index = index
        self.current = 0
        self.previous = 0

    def roll(self, index: int) -> None:
        if index == self.index:
            return
        self.previous = self.current if index == self.index + 1 else 0
        self.current = 0
        self.index = index

    def estimate(self, elapsed: float) -> float:
        """Pings in the last WINDOW_S seconds; `elapsed` is the share of this window gone."""
        return self.previous * (1 - elapsed) + self.current

    def wait_s(self, elapsed: float, limit: int) -> int:
        """Seconds until one more ping would be admitted, if no other arrives meanwhile."""
        room = limit - 1
        if self.current <= room and self.previous > 0:
            # Within this window: the previous one's share fades out.
            until = 1 - (room - self.current) / self.previous
            return _whole_seconds((until - elapsed) * WINDOW_S)
        # This window alone is over the limit: wait for it to fade in the next.
        until = 1 - room / self.current if self.current else 0
        return _whole_seconds((1 - elapsed + until) * WINDOW_S)


def _whole_seconds(seconds: float) -> int:
    # One second more than the exact figure: a client that waits as told is admitted.
    return max(1, math.ceil(seconds) + 1)


class WindowCounts:
    """Windows by pseudonym, least recently seen first, at most `max_entries` of them."""

    def __init__(self, name: str, max_entries: int, *, shared: bool = False):
        self.name = name
        self._windows: OrderedDict[str, Window] = OrderedDict()
        self._max_entries = max_entries
        self._shared = shared
        # Counts not yet added to the shared totals, by window index.
        self._unshared: dict[int, dict[str, int]] = {}

    def __len__(self) -> int:
        return len(self._windows)

    def hit(self, pseudonym: str, index: int) -> Window:
        window = self._windows.get(pseudonym)
        if window is None:
            window = self._windows[pseudonym] = Window(index)
            if len(self._windows) > self._max_entries:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(pseudonym)
            window.roll(index)
        window.current += 1
        if self._shared:
            unshared = self._unshared.get(index)
            if unshared is None:
                unshared = self._unshared[index] = {}
            unshared[pseudonym] = unshared.get(pseudonym, 0) + 1
        return window

    def drop_idle(self, index: int) -> None:
        """Forget pseudonyms unseen for two windows: they count nothing any more."""
        while self._windows:
            pseudonym, window = next(iter(self._windows.items()))
            if window.index >= index - 1:
                return
            del self._windows[pseudonym]

    def take_unshared(self) -> dict[int, dict[str, int]]:
        unshared, self._unshared = self._unshared, {}
        return unshared

    def learn_total(self, pseudonym: str, index: int, total: int) -> None:
        """Take the shared total of a window, plus what counted here since it was read."""
        window = self._windows.get(pseudonym)
        if window is None:
            return
        if window.index == index:
            window.current = total + self._unshared.get(index, {}).get(pseudonym, 0)
        elif window.index == index + 1:
            window.previous = total


def _shared_store(url: str | None) -> redis.Redis | None:
    """The Redis client, when one is configured; the library is imported only then, as it
    costs every process a third of a second of its start (the CLI's commands too)."""
    if not url:
        return None
    import redis.asyncio as redis

    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )


class RateLimiter:
    def __init__(self, settings: Settings, clock: Clock, *, network_key: bytes):
        self._clock = clock
        # Held in memory only: never written to the store, Redis or a log.
        self._network_key = network_key
        self._licence_floor = settings.rate_limit_licence_per_hour
        self._per_machine = settings.rate_limit_machine_per_hour
        self._network_limit = settings.rate_limit_network_per_hour
        self._round_s = settings.rate_limit_sync_s
        self._redis = _shared_store(settings.rate_limit_redis_url)
        shared = self._redis is not None
        self._licences = WindowCounts("licence", settings.rate_limit_entries, shared=shared)
        self._networks = WindowCounts("network", settings.rate_limit_entries, shared=shared)
        self._redis_failing = False
        self._task: asyncio.Task[None] | None = None

    def licence_limit(self, machines: int) -> int:
        """Pings an hour for a licence with this many machines (0 for an unknown key)."""
        if not self._licence_floor:
            return 0
        return max(self._licence_floor, self._per_machine * machines)

    def check_licence(self, key_hash: str, machines: int, now: dt.datetime) -> None:
        self._check(self._licences, key_hash, self.licence_limit(machines), now)

    def check_network(self, address: str | None, now: dt.datetime) -> None:
        """Count a ping against its network (/24 or /48), named by a keyed hash of its own:
        the net_id stored with pings is scoped to a licence, and a limit is not."""
        if address is None:
            return
        try:
            prefix = network_prefix(address)
        except ValueError:
            return
        network = hmac.digest(self._network_key, prefix, "sha256").hex()[:16]
        self._check(self._networks, network, self._network_limit, now)

    @staticmethod
    def _check(counts: WindowCounts, pseudonym: str, limit: int, now: dt.datetime) -> None:
        if not limit:
            return
        position = now.timestamp() / WINDOW_S
        index = int(position)
        elapsed = position - index
        window = counts.hit(pseudonym, index)
        if window.estimate(elapsed) > limit:
            metrics.count_rate_limited(counts.name)
            raise RateLimited(window.wait_s(elapsed, limit))

    def start(self) -> None:
        self._task = asyncio.create_task(self._rounds(), name="callhome-rate-limits")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._redis is not None:
            await self._redis.aclose()

    async def _rounds(self) -> None:
        while True:
            await asyncio.sleep(self._round_s)
            try:
                await self.run_round(self._clock.now())
            except Exception as error:
                # The next round tries again; the pings go on meanwhile.
                logger.warning("rate-limit round failed: %s", type(error).__name__)

    async def run_round(self, now: dt.datetime) -> None:
        """Drop idle pseudonyms and, with Redis, share this node's counts."""
        index = int(now.timestamp() / WINDOW_S)
        for counts in (self._licences, self._networks):
            counts.drop_idle(index)
        if self._redis is None:
            return
        from redis.exceptions import RedisError

        try:
            for counts in (self._licences, self._networks):
                await self._share(self._redis, counts)
        except (RedisError, OSError) as error:
            if not self._redis_failing:
                # Once, and without the URL: it may carry a password.
                logger.warning(
                    "rate-limit store unreachable (%s): each node limits alone until it is back",
                    type(error).__name__,
                )
            self._redis_failing = True
            return
        if self._redis_failing:
            logger.info("rate-limit store reachable again: limits are shared")
            self._redis_failing = False

    @staticmethod
    async def _share(client: redis.Redis, counts: WindowCounts) -> None:
        unshared = counts.take_unshared()
        if not unshared:
            return
        order = [(index, pseudonym) for index, deltas in unshared.items() for pseudonym in deltas]
        pipeline = client.pipeline(transaction=False)
        for index, pseudonym in order:
            key = f"callhome:rate:{counts.name}:{index}:{pseudonym}"
            pipeline.incrby(key, unshared[index][pseudonym])
            # The previous window is still read for an hour; nothing outlives that.
            pipeline.expire(key, 2 * WINDOW_S)
        replies = await pipeline.execute()
        for (index, pseudonym), total in zip(order, replies[::2], strict=True):
            counts.learn_total(pseudonym, index, int(total))


RateLimiterDep = Annotated[RateLimiter, Depends(component(RateLimiter))]


async def _network_limited(
    request: Request, limiter: RateLimiterDep, settings: SettingsDep, now: Now
) -> str | None:
    """The caller's address, once its network is within the per-network limit: counted by
    the limiter's own in-memory key, so nothing is read from the store."""
    address = caller_address(request, settings.trusted_proxies)
    limiter.check_network(address, now)
    return address


# For every route that takes a licence key: the caller's network is counted against the
# ping's per-network limit (429 past it) before any licence is looked up.
NetworkLimited = Annotated[str | None, Depends(_network_limited)]
