"""From a ping's bytes to its signed verdict.

Read top to bottom: parse, find the licence in the cache, decide the seat
(known machines at once, newcomers through the exact seat check), hand the
record to the batch writer, sign, and answer once the record is durable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from pydantic import BaseModel, ValidationError

from app.abuse.buffer import FindingsBuffer
from app.core import metrics
from app.core.clock import Clock, rfc3339
from app.core.components import component
from app.core.database import Database, guarded
from app.core.errors import InvalidInput, describe_errors
from app.core.json import dumps
from app.core.pseudonyms import NetworkIds, Pseudonyms
from app.core.ratelimit import RateLimiter
from app.core.settings import Settings
from app.core.signing import Signer
from app.ingest.writer import BatchWriter, PingRecord
from app.licences.cache import LicenceSnapshot, LicenceState, licence_status
from app.licences.lookup import LicenceLookup
from app.licences.models import Seat
from app.licences.schemas import short_machine_id
from app.licences.seats import SeatDecision, claim_seat
from app.ping.schemas import PingRequest
from app.ping.steering import Steering
from app.releases.catalog import Catalog

Contract = TypeVar("Contract", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class SignedAnswer:
    body: bytes
    signature: str


def parse_strict(model: type[Contract], body: bytes, refusal: str) -> Contract:
    """A public call's body read by its contract model; refused with no echo of its values."""
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise InvalidInput(
            refusal, extra={"errors": describe_errors(error.errors(include_input=False))}
        ) from error


def parse_ping(body: bytes) -> PingRequest:
    return parse_strict(PingRequest, body, "The ping does not match the contract")


@dataclass(frozen=True, slots=True)
class SeatOutcome:
    seat: Seat
    active: int
    licence: LicenceSnapshot


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
        networks: NetworkIds,
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
        self._networks = networks
        self._steering = steering

    async def answer(self, body: bytes, address: str | None) -> SignedAnswer:
        ping = parse_ping(body)
        now = self._clock.now()
        key_hash = self._pseudonyms.key_hash(ping.licence_key)
        state = await self._licences.admit(key_hash, address, now)
        if state is None or state.licence.product != ping.product:
            metrics.count_ping("unknown", Seat.DENIED.value)
            return self._sign(unknown_verdict(), ping, body, now, lease_until=None)

        network = await self._networks.of(state.licence.id, address, now)
        machine_id = self._pseudonyms.machine_id(state.licence.id, ping.computer_id)
        status = licence_status(state.licence, now)
        if status == "valid" or state.licence.in_grace(now):
            # In grace the machines holding a seat keep it; no newcomer is admitted.
            outcome = await self._seat(
                key_hash, state, machine_id, ping, now, admit_newcomers=status == "valid"
            )
        else:
            outcome = SeatOutcome(Seat.DENIED, state.active_count(now), state.licence)
        # The seat check may have started a trial: its verdict names the new expiry.
        licence = outcome.licence
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
        seated = outcome.seat is Seat.GRANTED
        answer = self._sign(
            licence_verdict(licence, status, outcome, ping.user_count, machine_id, now),
            ping,
            body,
            now,
            lease_until=_lease_until(licence, now) if seated else None,
            # Updates and paid feeds go to valid licences' seated machines only.
            offered_to=licence if status == "valid" and seated else None,
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
        *,
        admit_newcomers: bool,
    ) -> SeatOutcome:
        if state.holds_active_seat(machine_id, now):
            state.seated[machine_id] = now
            return SeatOutcome(Seat.GRANTED, state.active_count(now), state.licence)
        if not admit_newcomers:
            return SeatOutcome(Seat.DENIED, state.active_count(now), state.licence)
        decision = await guarded(
            self._claim_seat(state.licence, machine_id, ping, now), self._settings
        )
        self._licences.remember(key_hash, LicenceState(decision.licence, decision.seated))
        if decision.over_limit:
            self._findings.note_machines_over_limit(decision.licence.id, now)
        return SeatOutcome(decision.seat, decision.active, decision.licence)

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
        next_check_in = round(
            self._settings.check_in_interval_s * self._steering.factor * random.uniform(0.9, 1.1)
        )
        if offered_to is not None and offered_to.floating:
            # A floating seat lapses unless renewed: check in twice within each lease.
            next_check_in = min(next_check_in, int(offered_to.activity_window.total_seconds()) // 2)
        answer = answer_document(
            verdict=verdict,
            # Updates and signature sets are for valid licences only.
            update=(
                self._catalog.update_for(offered_to, ping.channel, ping.version, machine_id)
                if offered_to is not None
                else None
            ),
            signatures=(
                self._catalog.signature_sets_for(offered_to, ping.signatures, ping.version)
                if offered_to is not None
                else {}
            ),
            next_check_in=next_check_in,
            lease_expires=lease_expires,
            now=now,
            nonce=ping.nonce,
            body=body,
        )
        answer_body = dumps(answer)
        return SignedAnswer(answer_body, self._signer.signature_header(answer_body))


def answer_document(
    *,
    verdict: dict[str, Any],
    update: dict[str, Any] | None,
    signatures: dict[str, Any],
    next_check_in: int,
    lease_expires: dt.datetime,
    now: dt.datetime,
    nonce: str | None,
    body: bytes,
) -> dict[str, Any]:
    """The signed answer to the ping `body` (docs/protocol.md); the conformance vectors
    are made with it too."""
    lease_expires_text = rfc3339(lease_expires)
    server_time_text = rfc3339(now)
    return {
        # Every signed document's freshness window: a verdict is issued when the
        # server answers and trusted until its lease ends.
        "issued_at": server_time_text,
        "expires_at": lease_expires_text,
        "licence": verdict,
        "update": update,
        "signatures": signatures,
        "next_check_in": next_check_in,
        "lease_expires": lease_expires_text,
        "server_time": server_time_text,
        "nonce": nonce,
        "request_sha256": hashlib.sha256(body).hexdigest(),
    }


def users_over_limit(licence: LicenceSnapshot, user_count: int) -> bool:
    return licence.max_users is not None and user_count > licence.max_users


def _lease_until(licence: LicenceSnapshot, now: dt.datetime) -> dt.datetime | None:
    """The latest moment a seated machine may trust its verdict offline: never past the
    licence's expiry, or the end of its grace; on a floating licence, never past the lease."""
    until = licence.grace_until or licence.expires_at
    if licence.floating:
        lease_end = now + licence.activity_window
        until = lease_end if until is None else min(until, lease_end)
    return until


def licence_verdict(
    licence: LicenceSnapshot,
    status: str,
    outcome: SeatOutcome,
    user_count: int,
    machine_id: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """The verdict's `licence` object: what a ping's answer and an offline licence file say."""
    grace_until = licence.grace_until if licence.in_grace(now) else None
    return {
        "status": status,
        "expires_at": rfc3339(licence.expires_at) if licence.expires_at else None,
        "grace_until": rfc3339(grace_until) if grace_until else None,
        "max_users": licence.max_users,
        "users_over_limit": users_over_limit(licence, user_count),
        "entitlements": sorted(licence.entitlements),
        "updates_until": licence.updates_until.isoformat() if licence.updates_until else None,
        "machines": {
            "allowed": licence.max_machines,
            "active": outcome.active,
            "over_limit": outcome.active > licence.max_machines,
            "seat": outcome.seat.value,
            "this_machine": short_machine_id(machine_id),
            "floating": licence.floating,
        },
    }


def unknown_verdict() -> dict[str, Any]:
    return {
        "status": "unknown",
        "expires_at": None,
        "grace_until": None,
        "max_users": None,
        "users_over_limit": False,
        "entitlements": [],
        "updates_until": None,
        "machines": {
            "allowed": 0,
            "active": 0,
            "over_limit": False,
            "seat": "denied",
            "this_machine": None,
            "floating": False,
        },
    }


PingServiceDep = Annotated[PingService, Depends(component(PingService))]
