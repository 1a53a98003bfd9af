"""From a ping's bytes to its signed verdict.

Read top to bottom: parse, find the licence in the cache, decide the seat
(known machines at once, newcomers through the exact seat check), hand the
record to the batch writer, sign, and answer once the record is durable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import random
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.abuse.buffer import FindingsBuffer
from app.core import metrics
from app.core.clock import Clock, rfc3339
from app.core.database import Database, guarded
from app.core.errors import InvalidInput, describe_errors
from app.core.json import dumps
from app.core.pseudonyms import DayKeyRing, Pseudonyms, net_id
from app.core.settings import Settings
from app.core.signing import Signer
from app.ingest.writer import BatchWriter, PingRecord
from app.licences.cache import LicenceSnapshot, LicenceState, licence_status
from app.licences.lookup import LicenceLookup
from app.licences.models import Seat
from app.licences.seats import SeatDecision, claim_seat
from app.ping.ratelimit import RateLimiter
from app.ping.schemas import PingRequest
from app.ping.steering import Steering
from app.releases.catalog import Catalog

UNKNOWN_NETWORK = "0" * 16


@dataclass(frozen=True, slots=True)
class SignedAnswer:
    body: bytes
    signature: str


def parse_ping(body: bytes) -> PingRequest:
    try:
        return PingRequest.model_validate_json(body)
    except ValidationError as error:
        raise InvalidInput(
            "The ping does not match the contract",
            extra={"errors": describe_errors(error.errors(include_input=False))},
        ) from error


@dataclass(frozen=True, slots=True)
class SeatOutcome:
    seat: Seat
    active: int


class PingService:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        database: Database,
        pseudonyms: Pseudonyms,
        signer: Signer,
        licences: LicenceLookup,
        writer: BatchWriter,
        catalog: Catalog,
        findings: FindingsBuffer,
        limiter: RateLimiter,
        steering: Steering,
    ):
        self._settings = settings
        self._clock = clock
        self._database = database
        self._pseudonyms = pseudonyms
        self._signer = signer
        self._licences = licences
        self._writer = writer
        self._catalog = catalog
        self._findings = findings
        self._limiter = limiter
        self._steering = steering
        self._day_keys = DayKeyRing(pseudonyms.day_key_wrapping)
        self._day_key_lock = asyncio.Lock()

    async def answer(self, body: bytes, address: str | None) -> SignedAnswer:
        ping = parse_ping(body)
        now = self._clock.now()
        key_hash = self._pseudonyms.key_hash(ping.licence_key)
        if address is not None:
            self._limiter.check_network(address, now)
        state = await self._licences.by_key_hash(key_hash)
        self._limiter.check_licence(key_hash, _machines(state), now)
        if state is None or state.licence.product != ping.product:
            metrics.count_ping("unknown", Seat.DENIED.value)
            return self._sign(_unknown_verdict(), ping, body, now, lease_until=None)

        licence = state.licence
        machine_id = self._pseudonyms.machine_id(licence.id, ping.computer_id)
        network = await self._net_id(licence.id, address, now)
        status = licence_status(licence, now)
        if status == "valid":
            outcome = await self._seat(key_hash, state, machine_id, ping, now)
        else:
            outcome = SeatOutcome(Seat.DENIED, state.active_count(now))
        record = PingRecord(
            licence_id=licence.id,
            received_at=now,
            machine_id=machine_id,
            net_id=network,
            product=ping.product,
            version=ping.version,
            channel=self._catalog.channel_to_keep(ping.product, ping.channel),
            user_count=ping.user_count,
            signatures=self._catalog.signatures_to_keep(ping.signatures),
            status=status,
            seat=outcome.seat.value,
        )
        durable = self._writer.submit(record)
        answer = self._sign(
            _verdict(licence, status, outcome, ping.user_count),
            ping,
            body,
            now,
            lease_until=licence.expires_at if status == "valid" else None,
            offered_to=licence if status == "valid" else None,
            machine_id=machine_id,
        )
        await durable
        metrics.count_ping(status, outcome.seat.value)
        if status == "valid" and users_over_limit(licence, ping.user_count):
            self._findings.note_users_over_limit(licence.id)
        return answer

    async def _seat(
        self,
        key_hash: str,
        state: LicenceState,
        machine_id: str,
        ping: PingRequest,
        now: dt.datetime,
    ) -> SeatOutcome:
        if state.holds_active_seat(machine_id, now):
            state.seated[machine_id] = now
            return SeatOutcome(Seat.GRANTED, state.active_count(now))
        decision = await guarded(
            self._claim_seat(state.licence, machine_id, ping, now), self._settings
        )
        self._licences.remember(key_hash, LicenceState(decision.licence, decision.seated))
        if decision.over_limit:
            self._findings.note_machines_over_limit(decision.licence.id, now)
        return SeatOutcome(decision.seat, decision.active)

    async def _claim_seat(
        self, licence: LicenceSnapshot, machine_id: str, ping: PingRequest, now: dt.datetime
    ) -> SeatDecision:
        async with self._database.sessions() as session, session.begin():
            return await claim_seat(
                session,
                licence,
                machine_id,
                version=ping.version,
                user_count=ping.user_count,
                now=now,
            )

    async def _net_id(self, licence_id: uuid.UUID, address: str | None, now: dt.datetime) -> str:
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
        async with self._day_key_lock:
            key = self._day_keys.cached(now.date())
            if key is not None:
                return key
            async with self._database.sessions() as session, session.begin():
                return await self._day_keys.load(session, now)

    def _sign(
        self,
        verdict: dict[str, Any],
        ping: PingRequest,
        body: bytes,
        now: dt.datetime,
        *,
        lease_until: dt.datetime | None,
        offered_to: LicenceSnapshot | None = None,
        machine_id: str = "",
    ) -> SignedAnswer:
        lease_expires = now + dt.timedelta(seconds=self._settings.lease_s)
        if lease_until is not None:
            # Offline, an install must not outlive its licence on our word.
            lease_expires = min(lease_expires, lease_until)
        interval = self._settings.check_in_interval_s * self._steering.factor
        answer = {
            "licence": verdict,
            # Updates and signature sets are for valid licences only.
            "update": (
                self._catalog.update_for(offered_to, ping.channel, ping.version, machine_id)
                if offered_to is not None
                else None
            ),
            "signatures": (
                self._catalog.signature_sets_for(offered_to, ping.signatures, ping.version)
                if offered_to is not None
                else {}
            ),
            "next_check_in": round(interval * random.uniform(0.9, 1.1)),
            "lease_expires": rfc3339(lease_expires),
            "server_time": rfc3339(now),
            "nonce": ping.nonce,
            "request_sha256": hashlib.sha256(body).hexdigest(),
        }
        answer_body = dumps(answer)
        return SignedAnswer(answer_body, self._signer.signature_header(answer_body))


def _machines(state: LicenceState | None) -> int:
    """What a licence's rate limit scales with: machines allowed, or seated if more."""
    if state is None:
        return 0
    return max(state.licence.max_machines, len(state.seated))


def users_over_limit(licence: LicenceSnapshot, user_count: int) -> bool:
    return licence.max_users is not None and user_count > licence.max_users


def _verdict(
    licence: LicenceSnapshot, status: str, outcome: SeatOutcome, user_count: int
) -> dict[str, Any]:
    return {
        "status": status,
        "expires_at": rfc3339(licence.expires_at) if licence.expires_at else None,
        "max_users": licence.max_users,
        "users_over_limit": users_over_limit(licence, user_count),
        "machines": {
            "allowed": licence.max_machines,
            "active": outcome.active,
            "over_limit": outcome.active > licence.max_machines,
            "seat": outcome.seat.value,
        },
    }


def _unknown_verdict() -> dict[str, Any]:
    return {
        "status": "unknown",
        "expires_at": None,
        "max_users": None,
        "users_over_limit": False,
        "machines": {"allowed": 0, "active": 0, "over_limit": False, "seat": "denied"},
    }
