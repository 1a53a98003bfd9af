"""Pseudonyms for the three identifying values a ping carries: key, computer ID, address."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import day_keys_repository
from app.core.database import Database, guarded
from app.core.settings import Settings

DAY_KEY_LIFETIME = dt.timedelta(hours=48)


def normalise_licence_key(key: str) -> str:
    """Keys are compared without case, spaces or dashes, as customers type them."""
    return "".join(key.split()).replace("-", "").upper()


class Pseudonyms:
    """Keyed hashes under the pseudonym key, which never enters the database."""

    def __init__(self, pseudonym_key: bytes):
        self._key = pseudonym_key

    def _mac(self, *parts: bytes) -> bytes:
        return hmac.new(self._key, b"\x00".join(parts), hashlib.sha256).digest()

    def key_hash(self, licence_key: str) -> str:
        return self._mac(b"licence-key", normalise_licence_key(licence_key).encode()).hex()

    def machine_id(self, licence_id: uuid.UUID, computer_id: str) -> str:
        # Scoped to the licence: one PC cannot be followed across licences.
        return self._mac(b"machine", licence_id.bytes, computer_id.encode()).hex()[:32]


def network_prefix(address: str) -> bytes:
    """The /24 of an IPv4 or /48 of an IPv6 address, packed; never kept as text."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return b"4" + ip.packed[:3]
    return b"6" + ip.packed[:6]


def net_id(day_key: bytes, address: str) -> str:
    return hmac.new(day_key, network_prefix(address), hashlib.sha256).hexdigest()[:16]


class DayKeyRing:
    """Today's key in memory, shared by every server process through the store."""

    def __init__(self) -> None:
        self._keys: dict[dt.date, bytes] = {}

    def cached(self, day: dt.date) -> bytes | None:
        return self._keys.get(day)

    async def load(self, session: AsyncSession, now: dt.datetime) -> bytes:
        day = now.astimezone(dt.UTC).date()
        # Whichever process comes first creates the day's key; the others read it.
        key = await day_keys_repository.day_key(session, day, secrets.token_bytes(32), now)
        self._keys = {day: key}
        return key


# The net_id of a client whose address is not known: limited by nothing per network.
UNKNOWN_NETWORK = "0" * 16


class NetworkIds:
    """The day's `net_id` of a client address, from today's key in memory (the store is
    read once a day); what the ping stores and every per-network rate limit counts by."""

    def __init__(self, *, database: Database, settings: Settings):
        self._database = database
        self._settings = settings
        self._day_keys = DayKeyRing()
        self._lock = asyncio.Lock()

    async def of(self, address: str | None, now: dt.datetime) -> str:
        if address is None:
            return UNKNOWN_NETWORK
        key = self._day_keys.cached(now.date())
        if key is None:
            key = await guarded(self._load_day_key(now), self._settings)
        try:
            return net_id(key, address)
        except ValueError:
            return UNKNOWN_NETWORK

    async def _load_day_key(self, now: dt.datetime) -> bytes:
        async with self._lock:
            key = self._day_keys.cached(now.date())
            if key is not None:
                return key
            async with self._database.sessions() as session, session.begin():
                return await self._day_keys.load(session, now)


async def destroy_expired_day_keys(session: AsyncSession, now: dt.datetime) -> int:
    """Delete every day key whose day began 48 hours ago or more."""
    oldest_kept = (now.astimezone(dt.UTC) - DAY_KEY_LIFETIME).date() + dt.timedelta(days=1)
    return await day_keys_repository.delete_day_keys_before(session, oldest_kept)
