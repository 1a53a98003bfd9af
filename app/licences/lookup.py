"""Finding the licence behind a key hash, as the ping and the news routes both must: from
the in-process cache, from the store only on a miss, and a 503 rather than a hang."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends

from app.core.clock import Clock
from app.core.components import component
from app.core.database import Database, guarded
from app.core.ratelimit import RateLimiter
from app.core.settings import Settings
from app.licences.cache import LicenceCache, LicenceState, load_state


class LicenceLookup:
    def __init__(
        self,
        *,
        database: Database,
        cache: LicenceCache,
        clock: Clock,
        settings: Settings,
        limiter: RateLimiter,
    ):
        self._database = database
        self._limiter = limiter
        self._cache = cache
        self._clock = clock
        self._settings = settings

    async def by_key_hash(self, key_hash: str, now: dt.datetime) -> LicenceState | None:
        """The licence, once this key is within its rate limit (429 past it): a key that
        matches nothing is limited too, so guessing costs the guesser, not the store."""
        found, state = self._cache.lookup(key_hash)
        if not found:
            state = await guarded(self._cache.load(key_hash, self._load), self._settings)
        self._limiter.check_licence(key_hash, _machines(state), now)
        return state

    async def admit(
        self, key_hash: str, address: str | None, now: dt.datetime
    ) -> LicenceState | None:
        """The licence behind the key, once both rate limits admit the call: every public
        call that names a key is limited as the ping is. The network limit comes first, by
        the limiter's own in-memory key: a flood is refused before it costs the store."""
        self._limiter.check_network(address, now)
        return await self.by_key_hash(key_hash, now)

    def remember(self, key_hash: str, state: LicenceState) -> None:
        """What the exact seat check read from the locked rows is the freshest state."""
        self._cache.put(key_hash, state)

    async def _load(self, key_hash: str) -> LicenceState | None:
        async with self._database.sessions() as session:
            return await load_state(session, key_hash, self._clock.now())


def _machines(state: LicenceState | None) -> int:
    """What a licence's rate limit scales with: machines allowed, or seated if more."""
    if state is None:
        return 0
    return max(state.licence.max_machines, len(state.seated))


LicenceLookupDep = Annotated[LicenceLookup, Depends(component(LicenceLookup))]
