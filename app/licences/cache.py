"""Licences and their active machines, held in process so a ping reads nothing from the store.

An entry is dropped when its licence changes: on PostgreSQL at once, by
LISTEN/NOTIFY from whichever node changed it; on SQLite after a short TTL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import metrics
from app.licences import repository
from app.licences.models import EffectiveStatus, Licence, LicenceStatus, effective_status


@dataclass(frozen=True)
class LicenceSnapshot:
    id: uuid.UUID
    product: str
    status: LicenceStatus
    expires_at: dt.datetime | None
    max_machines: int
    max_users: int | None
    overage: str
    activity_window: dt.timedelta
    entitlements: frozenset[str]
    updates_until: dt.date | None
    trial_days: int | None
    grace: dt.timedelta | None
    floating: bool

    @classmethod
    def of(cls, licence: Licence) -> LicenceSnapshot:
        return cls(
            id=licence.id,
            product=licence.product,
            status=LicenceStatus(licence.status),
            expires_at=licence.expires_at,
            max_machines=licence.max_machines,
            max_users=licence.max_users,
            overage=licence.overage,
            activity_window=licence.seat_window,
            entitlements=frozenset(licence.entitlements),
            updates_until=licence.updates_until,
            trial_days=licence.trial_days,
            grace=dt.timedelta(days=licence.grace_days) if licence.grace_days else None,
            floating=licence.floating,
        )

    @property
    def grace_until(self) -> dt.datetime | None:
        """Until when the product may keep working after expiry."""
        if self.expires_at is None or self.grace is None:
            return None
        return self.expires_at + self.grace

    def in_grace(self, now: dt.datetime) -> bool:
        """Expired, but within its grace period: seats still count, the product may run."""
        grace_until = self.grace_until
        return (
            self.status is LicenceStatus.ACTIVE
            and grace_until is not None
            and (self.expires_at is not None and self.expires_at <= now < grace_until)
        )


def licence_status(licence: LicenceSnapshot, now: dt.datetime) -> str:
    """The verdict's status: the one staff are shown, with an active licence called valid."""
    status = effective_status(licence.status, licence.expires_at, now)
    return "valid" if status is EffectiveStatus.ACTIVE else status.value


@dataclass
class LicenceState:
    """A licence and the last ping of each machine holding one of its seats."""

    licence: LicenceSnapshot
    seated: dict[str, dt.datetime] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.monotonic)

    def holds_active_seat(self, machine_id: str, now: dt.datetime) -> bool:
        last_seen = self.seated.get(machine_id)
        return last_seen is not None and now - last_seen < self.licence.activity_window

    def active_count(self, now: dt.datetime) -> int:
        cutoff = now - self.licence.activity_window
        return sum(1 for last_seen in self.seated.values() if last_seen > cutoff)


async def load_state(session: AsyncSession, key_hash: str, now: dt.datetime) -> LicenceState | None:
    licence = await repository.find_by_key_hash(session, key_hash)
    if licence is None:
        return None
    snapshot = LicenceSnapshot.of(licence)
    return LicenceState(snapshot, await seated_machines(session, snapshot, now))


async def seated_machines(
    session: AsyncSession, licence: LicenceSnapshot, now: dt.datetime
) -> dict[str, dt.datetime]:
    """Machines that hold a seat now, with their last sighting."""
    return await repository.seated_machines(session, licence.id, licence.activity_window, now)


Loader = Callable[[str], Awaitable[LicenceState | None]]


class LicenceCache:
    """A bounded LRU from key hash to licence state; unknown keys are remembered too."""

    def __init__(self, *, max_entries: int, ttl_s: float | None):
        self._entries: OrderedDict[str, LicenceState | None] = OrderedDict()
        self._loaded_at: dict[str, float] = {}
        self._key_of: dict[uuid.UUID, str] = {}
        self._loading: dict[str, asyncio.Future[LicenceState | None]] = {}
        self._max_entries = max_entries
        self._ttl_s = ttl_s

    def _fresh(self, key_hash: str) -> bool:
        if self._ttl_s is None:
            return True
        return time.monotonic() - self._loaded_at[key_hash] < self._ttl_s

    def lookup(self, key_hash: str) -> tuple[bool, LicenceState | None]:
        """(found, state) without touching the store; state None means a known-unknown key."""
        if key_hash in self._entries and self._fresh(key_hash):
            self._entries.move_to_end(key_hash)
            metrics.count_cache_lookup(hit=True)
            return True, self._entries[key_hash]
        metrics.count_cache_lookup(hit=False)
        return False, None

    async def load(self, key_hash: str, load: Loader) -> LicenceState | None:
        """Read the entry from the store, once however many pings wait for it."""
        pending = self._loading.get(key_hash)
        if pending is not None:
            # Many pings for one licence after a change: one store read serves all.
            return await asyncio.shield(pending)
        future: asyncio.Future[LicenceState | None] = asyncio.get_running_loop().create_future()
        self._loading[key_hash] = future
        try:
            state = await load(key_hash)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters get it, nobody else must
            raise
        finally:
            self._loading.pop(key_hash, None)
        self.put(key_hash, state)
        future.set_result(state)
        return state

    def put(self, key_hash: str, state: LicenceState | None) -> None:
        self._entries[key_hash] = state
        self._entries.move_to_end(key_hash)
        self._loaded_at[key_hash] = time.monotonic()
        if state is not None:
            self._key_of[state.licence.id] = key_hash
        while len(self._entries) > self._max_entries:
            evicted, old = self._entries.popitem(last=False)
            self._loaded_at.pop(evicted, None)
            if old is not None:
                self._key_of.pop(old.licence.id, None)

    def invalidate(self, licence_id: uuid.UUID) -> None:
        key_hash = self._key_of.pop(licence_id, None)
        if key_hash is None:
            # Not cached, perhaps new: its key may be one remembered as unknown.
            self._forget_unknown_keys()
            return
        self._entries.pop(key_hash, None)
        self._loaded_at.pop(key_hash, None)

    def _forget_unknown_keys(self) -> None:
        for key_hash in [key for key, state in self._entries.items() if state is None]:
            del self._entries[key_hash]
            self._loaded_at.pop(key_hash, None)

    def clear(self) -> None:
        self._entries.clear()
        self._loaded_at.clear()
        self._key_of.clear()
