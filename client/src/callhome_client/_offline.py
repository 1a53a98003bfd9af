"""Offline activation: the request file a machine with no way out hands over, and the check
of the licence file it gets back, done with no network."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ._answer import decode_object
from ._computer_id import hardware_computer_id
from ._constants import MAX_OFFLINE_CLOCK_BEHIND_S
from ._core import ComputerIdSource
from ._exceptions import (
    AnswerMismatchError,
    MalformedAnswerError,
    StaleAnswerError,
    WrongMachineError,
)
from ._models import Verdict, json_ready, licence_fields, parse_licence
from ._request import check_computer_id, check_licence_key, check_product, check_version
from ._signing import PinnedKeys, strict_base64
from ._time import Clock, format_rfc3339, utc_now

LICENCE_FILE_FORMAT = "callhome-offline-licence/1"


def _computer_id(source: ComputerIdSource, product: str) -> str:
    if source is None:
        computer_id = hardware_computer_id(product)
    else:
        computer_id = source if isinstance(source, str) else source()
    check_computer_id(computer_id)
    return computer_id


def offline_request(
    licence_key: str, product: str, version: str, *, computer_id: ComputerIdSource = None
) -> bytes:
    """The activation request of this machine: the licence key, product, computer ID and
    version, nothing else. Staff or the customer page turn it into a licence file."""
    check_licence_key(licence_key)
    check_product(product)
    check_version(version)
    request = {
        "licence_key": licence_key,
        "product": product,
        "computer_id": _computer_id(computer_id, product),
        "version": version,
    }
    return json.dumps(request, separators=(",", ":")).encode("ascii")


@dataclass(frozen=True)
class OfflineLicence:
    """A verified licence file: the verdict it carries, and when it was issued and ends."""

    verdict: Verdict
    """The licence as of now: "expired" past the licence's expiry, with the grace the
    file runs into."""
    issued_at: datetime
    expires_at: datetime
    this_machine: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary, timestamps in RFC 3339."""
        return dataclasses.asdict(self, dict_factory=json_ready)


def read_offline_licence(
    data: bytes,
    *,
    product: str,
    public_keys: list[str],
    computer_id: ComputerIdSource = None,
    clock: Clock = utc_now,
    max_clock_skew_s: float = MAX_OFFLINE_CLOCK_BEHIND_S,
) -> OfflineLicence:
    """Verify a licence file on this machine, with no network, and return what it grants.

    Refused (an UntrustedAnswer) unless it is signed by a pinned key, names this product,
    is bound to this machine's computer ID, and is neither expired nor issued later than
    this machine's clock allows (a clock turned back does not stretch a file).
    """
    check_product(product)
    document = _verified_document(data, PinnedKeys(public_keys))
    if document.get("format") != LICENCE_FILE_FORMAT:
        raise MalformedAnswerError("this is not a callhome offline licence file")
    if document.get("product") != product:
        raise AnswerMismatchError("the licence file is for another product")
    machine = document.get("machine")
    if not isinstance(machine, dict):
        raise MalformedAnswerError("the licence file names no machine")
    _check_binding(machine, _computer_id(computer_id, product))
    fields = licence_fields(document)
    issued_at, expires_at = fields.timestamp("issued_at"), fields.timestamp("expires_at")
    now = clock()
    if now >= expires_at:
        raise StaleAnswerError(f"the licence file ended at {format_rfc3339(expires_at)}")
    if issued_at - now > timedelta(seconds=max_clock_skew_s):
        raise StaleAnswerError("the licence file was issued after this machine's clock time")
    verdict = parse_licence(
        fields.child("licence"), issued_at=issued_at, expires_at=expires_at, now=now
    )
    return OfflineLicence(verdict, issued_at, expires_at, str(machine.get("this_machine", "")))


def _verified_document(data: bytes, keys: PinnedKeys) -> dict[str, Any]:
    try:
        outer = decode_object(data)
    except MalformedAnswerError:
        raise MalformedAnswerError("the licence file is not a JSON object") from None
    encoded, signature = outer.get("document"), outer.get("signature")
    if not isinstance(encoded, str) or not isinstance(signature, str):
        raise MalformedAnswerError("the licence file lacks its document or signature")
    try:
        document = strict_base64(encoded)
    except (binascii.Error, ValueError):
        raise MalformedAnswerError("the licence file's document is not base64") from None
    keys.verify(signature, document)
    return decode_object(document)


def _check_binding(machine: dict[str, Any], computer_id: str) -> None:
    salt, expected = machine.get("binding_salt"), machine.get("binding_sha256")
    if not isinstance(salt, str) or not isinstance(expected, str):
        raise MalformedAnswerError("the licence file's machine binding is incomplete")
    try:
        salt_bytes = base64.b64decode(salt, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedAnswerError("the licence file's binding salt is not base64") from None
    actual = hashlib.sha256(salt_bytes + computer_id.encode()).hexdigest()
    if not hmac.compare_digest(actual, expected):
        raise WrongMachineError("the licence file was issued to another machine")
