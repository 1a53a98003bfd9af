"""Deactivation: the key holder frees a machine's seat at once, with a signed answer."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import rfc3339
from app.core.json import dumps
from app.core.pseudonyms import Pseudonyms
from app.core.signing import Signer
from app.customer.schemas import DeactivateRequest
from app.licences import service as licences
from app.licences.lookup import LicenceLookup
from app.licences.schemas import short_machine_id
from app.ping.service import SignedAnswer, parse_strict

# Long enough for a slow network, short enough that a replayed answer is soon refused.
ANSWER_LIFETIME = dt.timedelta(minutes=5)


async def deactivate(
    session: AsyncSession,
    body: bytes,
    address: str | None,
    *,
    lookup: LicenceLookup,
    pseudonyms: Pseudonyms,
    signer: Signer,
    now: dt.datetime,
) -> SignedAnswer:
    """Free the named machine's seat; an unknown key learns no more than from a ping."""
    request = parse_strict(DeactivateRequest, body, "The deactivation does not match the contract")
    key_hash = pseudonyms.key_hash(request.licence_key)
    state = await lookup.admit(key_hash, address, now)
    status, this_machine = "unknown", None
    if state is not None and state.licence.product == request.product:
        machine_id = pseudonyms.machine_id(state.licence.id, request.computer_id)
        freed = await licences.release_seat(session, state.licence.id, machine_id, now=now)
        status = "deactivated" if freed else "not_seated"
        this_machine = short_machine_id(machine_id)
    return deactivation_answer(
        signer, status=status, this_machine=this_machine, nonce=request.nonce, body=body, now=now
    )


def deactivation_answer(
    signer: Signer,
    *,
    status: str,
    this_machine: str | None,
    nonce: str | None,
    body: bytes,
    now: dt.datetime,
) -> SignedAnswer:
    """The signed answer to the deactivation `body` (docs/protocol.md); the conformance
    vectors are made with it too."""
    answer = dumps(
        {
            "status": status,
            "this_machine": this_machine,
            "issued_at": rfc3339(now),
            "expires_at": rfc3339(now + ANSWER_LIFETIME),
            "nonce": nonce,
            "request_sha256": hashlib.sha256(body).hexdigest(),
        }
    )
    return SignedAnswer(answer, signer.signature_header(answer))
