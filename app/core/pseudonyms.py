"""Pseudonyms for the three identifying values a ping carries: key, computer ID, address."""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import secrets
import socket
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import day_keys_repository
from app.core.database import Database, guarded
from app.core.settings import Settings

DAY_KEY_LIFETIME = dt.timedelta(hours=48)
DAY_KEY_BYTES = 32
NONCE_BYTES = 12


def normalise_licence_key(key: str) -> str:
    """Keys are compared without case, spaces or dashes, as customers type them."""
    return "".join(key.split()).replace("-", "").upper()


def derive_key(pseudonym_key: bytes, purpose: bytes) -> bytes:
    """A key for one purpose, derived from the pseudonym key and never stored anywhere."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(pseudonym_key)


class Pseudonyms:
    """Keyed hashes under the pseudonym key, which never enters the database."""

    def __init__(self, pseudonym_key: bytes):
        self._key = pseudonym_key
        self.day_key_wrapping = DayKeyWrapping(derive_key(pseudonym_key, b"callhome day-key wrap"))
        # Shared by every node (so limits add up through Redis), held only in memory.
        self.network_limit_key = derive_key(pseudonym_key, b"callhome network rate limit")

    def _mac(self, *parts: bytes) -> bytes:
        return hmac.digest(self._key, b"\x00".join(parts), "sha256")

    def key_hash(self, licence_key: str) -> str:
        return self._mac(b"licence-key", normalise_licence_key(licence_key).encode()).hex()

    def machine_id(self, licence_id: uuid.UUID, computer_id: str) -> str:
        # Scoped to the licence: one PC cannot be followed across licences.
        return self._mac(b"machine", licence_id.bytes, computer_id.encode()).hex()[:32]


_IPV4_MAPPED = bytes(10) + b"\xff\xff"


def network_prefix(address: str) -> bytes:
    """The /24 of an IPv4 or /48 of an IPv6 address, packed; never kept as text.
    ValueError for anything that is not an address."""
    try:
        # inet_pton, not ipaddress: a tenth of the cost, and every ping pays it twice.
        return b"4" + socket.inet_pton(socket.AF_INET, address)[:3]
    except OSError:
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, address.partition("%")[0])
    except OSError:
        raise ValueError(f"not an IP address: {len(address)} characters") from None
    if packed.startswith(_IPV4_MAPPED):
        return b"4" + packed[12:15]
    return b"6" + packed[:6]


def net_id(day_key: bytes, licence_id: uuid.UUID, address: str) -> str:
    # Scoped to the licence: two licences on one network get unrelated net_ids.
    return hmac.digest(day_key, licence_id.bytes + network_prefix(address), "sha256").hex()[:16]


class DayKeyWrapping:
    """Seals day keys (AES-256-GCM, bound to their day) under a key that never enters the
    store: a copy of the database or a backup alone holds no day key in the clear."""

    def __init__(self, wrapping_key: bytes):
        self._aead = AESGCM(wrapping_key)

    def seal(self, day: dt.date, key: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, key, day.isoformat().encode())

    def open(self, day: dt.date, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], day.isoformat().encode()
            )
        except InvalidTag as error:
            raise RuntimeError(
                "the day key does not open under this pseudonym key: "
                "every server must share CALLHOME_PSEUDONYM_KEY"
            ) from error


class DayKeyRing:
    """Today's key in memory, shared by every server process through the store, sealed."""

    def __init__(self, wrapping: DayKeyWrapping) -> None:
        self._wrapping = wrapping
        self._keys: dict[dt.date, bytes] = {}

    def cached(self, day: dt.date) -> bytes | None:
        return self._keys.get(day)

    async def load(self, session: AsyncSession, now: dt.datetime) -> bytes:
        day = now.astimezone(dt.UTC).date()
        # Whichever process comes first creates the day's key; the others read it.
        sealed = await day_keys_repository.day_key(
            session, day, self._wrapping.seal(day, secrets.token_bytes(DAY_KEY_BYTES)), now
        )
        key = self._wrapping.open(day, sealed)
        self._keys = {day: key}
        return key


# The net_id of a client whose address is not known.
UNKNOWN_NETWORK = "0" * 16


class NetworkIds:
    """The day's `net_id` of a client address within a licence, from today's key in memory
    (the store is read once a day): what a ping record stores. Never a rate limit's key:
    the per-network limit names a network by its own key (app/core/ratelimit.py), so it is
    counted before any licence is known and without reading the store."""

    def __init__(self, *, database: Database, settings: Settings, pseudonyms: Pseudonyms):
        self._database = database
        self._settings = settings
        self._day_keys = DayKeyRing(pseudonyms.day_key_wrapping)
        self._lock = asyncio.Lock()

    async def of(self, licence_id: uuid.UUID, address: str | None, now: dt.datetime) -> str:
        if address is None:
            return UNKNOWN_NETWORK
        key = self._day_keys.cached(now.date())
        if key is None:
            key = await guarded(self._load_day_key(now), self._settings)
        try:
            return net_id(key, licence_id, address)
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
