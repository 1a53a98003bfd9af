"""Offline activation: a machine that never calls home takes a seat and gets a signed licence file.

The file is `{"document": <base64 of the signed JSON bytes>, "signature": <Callhome-Signature>}`;
docs/protocol.md describes the document and how the SDK verifies it with no network.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.clock import rfc3339
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.json import dumps
from app.core.pseudonyms import Pseudonyms
from app.core.signing import Signer
from app.customer.schemas import OfflineRequest
from app.licences import repository
from app.licences.cache import LicenceSnapshot, licence_status
from app.licences.changes import mark_changed
from app.licences.models import Seat
from app.licences.schemas import short_machine_id
from app.licences.seats import claim_seat
from app.ping.service import SeatOutcome, licence_verdict, parse_strict

LICENCE_FILE_FORMAT = "callhome-offline-licence/1"
# Random bytes mixed into the machine binding, so two files of one machine cannot be
# matched by it and no file holds a plain digest of the computer ID.
BINDING_SALT_BYTES = 16
# Both the request file and the licence file are a few hundred bytes.
MAX_REQUEST_BYTES = 4096


def parse_request(body: bytes) -> OfflineRequest:
    return parse_strict(OfflineRequest, body, "The activation request does not match the contract")


def machine_binding(salt: bytes, computer_id: str) -> str:
    """SHA-256 hex of salt + computer ID: the SDK recomputes it from its own computer ID."""
    return hashlib.sha256(salt + computer_id.encode()).hexdigest()


@dataclass(frozen=True)
class LicenceFile:
    body: bytes
    this_machine: str
    expires_at: dt.datetime


async def issue(
    session: AsyncSession,
    request: OfflineRequest,
    *,
    days: int | None,
    default_days: int,
    pseudonyms: Pseudonyms,
    signer: Signer,
    actor: str,
    now: dt.datetime,
    for_licence: uuid.UUID | None = None,
) -> LicenceFile:
    """Seat the requesting machine through the exact seat check, exactly as its first ping
    would, and sign a licence file bound to it. Renewing is the same call: a machine that
    holds its seat keeps it, and its hold runs to the new file's end.

    `for_licence` is the signed-in licence on the customer page: a request for another
    licence is refused there.
    """
    licence = await repository.find_by_key_hash(session, pseudonyms.key_hash(request.licence_key))
    if licence is None or licence.product != request.product:
        raise NotFound("No licence of this product has this key")
    if for_licence is not None and licence.id != for_licence:
        raise InvalidInput("This activation request is for another licence")
    if licence.floating:
        raise Conflict("A floating licence's seats are leases renewed by check-ins: no offline use")
    status = licence_status(LicenceSnapshot.of(licence), now)
    if status != "valid":
        raise Conflict(f"The licence is {status}: no machine can be activated")
    machine_id = pseudonyms.machine_id(licence.id, request.computer_id)
    decision = await claim_seat(
        session, LicenceSnapshot.of(licence), machine_id, version=request.version, user_count=0,
        now=now,
    )  # fmt: skip
    if decision.seat is not Seat.GRANTED:
        # Raised, so the request's transaction rolls back: nothing of the refusal is kept.
        raise Conflict("Every seat of this licence is taken: free a machine's seat first")
    # The seat check may have started a trial: the file runs to the expiry it set.
    seated = decision.licence
    expires_at = now + dt.timedelta(days=days or default_days)
    licence_end = seated.grace_until or seated.expires_at
    if licence_end is not None:
        expires_at = min(expires_at, licence_end)
    # The file states its end to the second; the seat is held no longer than it says.
    expires_at = expires_at.replace(microsecond=0)
    await repository.hold_seat_offline(session, licence.id, machine_id, expires_at)
    await mark_changed(session, licence.id)
    this_machine = short_machine_id(machine_id)
    await audit.record(
        session,
        actor=actor,
        action="machine.offline_activate",
        target_type="licence",
        target_id=str(licence.id),
        at=now,
        detail={"machine": this_machine, "until": rfc3339(expires_at)},
    )
    outcome = SeatOutcome(decision.seat, decision.active, seated)
    body = licence_file_body(
        signer,
        product=licence.product,
        verdict=licence_verdict(seated, status, outcome, 0, machine_id, now),
        computer_id=request.computer_id,
        salt=secrets.token_bytes(BINDING_SALT_BYTES),
        issued_at=now,
        expires_at=expires_at,
    )
    return LicenceFile(body, this_machine, expires_at)


def licence_file_body(
    signer: Signer,
    *,
    product: str,
    verdict: dict[str, Any],
    computer_id: str,
    salt: bytes,
    issued_at: dt.datetime,
    expires_at: dt.datetime,
) -> bytes:
    """The signed licence file (docs/protocol.md) for the machine of `computer_id`, carrying
    the verdict's `licence` object; the conformance vectors are made with it too."""
    document = dumps(
        {
            "format": LICENCE_FILE_FORMAT,
            "product": product,
            "licence": verdict,
            "machine": {
                "this_machine": verdict["machines"]["this_machine"],
                "binding_salt": base64.b64encode(salt).decode(),
                "binding_sha256": machine_binding(salt, computer_id),
            },
            "issued_at": rfc3339(issued_at),
            "expires_at": rfc3339(expires_at),
        }
    )
    body = dumps(
        {
            "document": base64.b64encode(document).decode(),
            "signature": signer.signature_header(document),
        }
    )
    return body + b"\n"
