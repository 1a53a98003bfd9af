"""Offline activation: the request file a machine with no way out hands over, and the check
of the licence file it gets back, done with no network."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ._answer import decode_object
from ._cache import AnswerCache
from ._computer_id import hardware_computer_id
from ._constants import DEFAULT_MAX_AGE_S, MAX_OFFLINE_CLOCK_BEHIND_S
from ._core import ComputerIdSource
from ._exceptions import (
    AnswerMismatchError,
    ClockBehindError,
    ExpiredAnswerError,
    MalformedAnswerError,
    WrongMachineError,
)
from ._freshness import window_of
from ._models import Verdict, json_ready, licence_fields, parse_licence
from ._request import check_computer_id, check_licence_key, check_product, check_version
from ._signing import PinnedKeys, strict_base64
from ._time import Clock, TrustedClock, format_rfc3339, utc_now

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


def offline_licence_kind(product: str) -> str:
    """The kind the trust record keeps a product's newest licence file under."""
    return f"offline-licence:{product}"


def read_offline_licence(
    data: bytes,
    *,
    product: str,
    public_keys: list[str],
    computer_id: ComputerIdSource = None,
    clock: Clock = utc_now,
    max_clock_skew_s: float = MAX_OFFLINE_CLOCK_BEHIND_S,
    cache_path: str | os.PathLike[str] | None = None,
) -> OfflineLicence:
    """Verify a licence file on this machine, with no network, and return what it grants.

    Refused (an UntrustedAnswer) unless it is signed by a pinned key, names this product,
    is bound to this machine's computer ID, and is neither expired nor issued later than
    this machine's clock allows (a clock turned back does not stretch a file).

    With `cache_path` (the trust record's file, as a Client's, which may be running) the
    file is judged against what this machine trusted before, and recorded: a file issued
    before the newest one accepted is refused (RollbackError), and the clock seen is kept,
    so a clock set back later neither revives a file seen ended (ExpiredAnswerError) nor
    passes unnoticed (ClockBehindError).
    """
    check_product(product)
    cache = AnswerCache(cache_path)
    record = cache.load().trust
    written_reached_at = record.clock_reached_at
    document = _verified_document(data, PinnedKeys(public_keys))
    if document.get("format") != LICENCE_FILE_FORMAT:
        raise MalformedAnswerError("this is not a callhome offline licence file")
    if document.get("product") != product:
        raise AnswerMismatchError("the licence file is for another product")
    machine = document.get("machine")
    if not isinstance(machine, dict):
        raise MalformedAnswerError("the licence file names no machine")
    _check_binding(machine, _computer_id(computer_id, product))
    window = window_of(document)
    now = TrustedClock(clock, max_skew_s=DEFAULT_MAX_AGE_S, skew_s=record.skew_s).now()
    judged_at = record.judged_at(now)
    verdict = parse_licence(
        licence_fields(document).child("licence"),
        issued_at=window.issued_at,
        expires_at=window.expires_at,
        now=judged_at,
    )
    if window.issued_at - now > timedelta(seconds=max_clock_skew_s):
        raise ClockBehindError("the licence file was issued after this machine's clock time")
    if record.clock_set_back(now):
        raise ClockBehindError("the clock is behind the latest time this machine has seen")
    record.reach(now)
    kind = offline_licence_kind(product)
    try:
        record.check(kind, document, judged_at)
    except ExpiredAnswerError:
        # Seen ended, it stays ended: a clock set back later cannot bring it back.
        if record.clock_due(written_reached_at, passed=window.expires_at):
            cache.record(record)
        ended_at = format_rfc3339(window.expires_at)
        raise ExpiredAnswerError(f"the licence file ended at {ended_at}") from None
    if record.remember(kind, window) or record.clock_due(written_reached_at):
        cache.record(record)
    this_machine = str(machine.get("this_machine", ""))
    return OfflineLicence(verdict, window.issued_at, window.expires_at, this_machine)


def _verified_document(data: bytes, keys: PinnedKeys) -> dict[str, Any]:
    try:
        outer = decode_object(data)
    except MalformedAnswerError:
        raise MalformedAnswerError("the licence file is not a JSON object") from None
    encoded, signature = outer.get("document"), outer.get("signature")
    if not isinstance(encoded, str):
        raise MalformedAnswerError("the licence file lacks its document")
    try:
        document = strict_base64(encoded)
    except (binascii.Error, ValueError):
        raise MalformedAnswerError("the licence file's document is not base64") from None
    # A file with no signature is refused as unsigned, as an answer with no header is.
    keys.verify(signature if isinstance(signature, str) else None, document)
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
