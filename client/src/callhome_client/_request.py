"""The ping request: its fields checked against the wire contract and serialised once."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._constants import MAX_REQUEST_BYTES, NONCE_BYTES
from ._exceptions import ConfigurationError

# The server's ping contract (app/ping/schemas.py), field by field: a value outside these
# is refused with 422 on every check-in, so it is refused here first, at construction.
# tests/test_sdk_contract.py feeds the same values to both and fails when they disagree.
_LICENCE_KEY = re.compile(r"[\x20-\x7e]{8,128}")
_PRODUCT = re.compile(r"[a-z0-9-]{1,32}")
_VERSION = re.compile(r"[A-Za-z0-9.+!_-]{1,32}")
_CHANNEL = re.compile(r"[a-z0-9-]{1,16}")
_FEED = re.compile(r"[a-z0-9-]{1,32}")
_COMPUTER_ID = re.compile(r"[A-Za-z0-9+/=_-]{16,128}")
_MAX_USER_COUNT = 10_000_000
_MAX_FEEDS = 16
_MAX_FEED_VERSION = 2**53
# PEP 440's own expression (its appendix B), in any case, surrounding spaces excluded.
_PEP440 = re.compile(
    r"v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*"
    r"(?:[._-]?(?:alpha|a|beta|b|preview|pre|c|rc)[._-]?[0-9]*)?"
    r"(?:-[0-9]+|[._-]?(?:post|rev|r)[._-]?[0-9]*)?"
    r"(?:[._-]?dev[._-]?[0-9]*)?"
    r"(?:\+[a-z0-9]+(?:[._-][a-z0-9]+)*)?",
    re.IGNORECASE | re.ASCII,
)
# semver.org's own expression for a SemVer 2.0.0 version.
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)


@dataclass(frozen=True)
class Identity:
    """Who is calling: the fields that stay the same from one ping to the next."""

    licence_key: str = field(repr=False)
    product: str
    version: str
    computer_id: str = field(repr=False)


@dataclass(frozen=True)
class PreparedPing:
    """One request, serialised once: the answer must name the digest of these exact bytes."""

    body: bytes = field(repr=False)
    nonce: str


def check_licence_key(licence_key: str) -> None:
    if not _matches(_LICENCE_KEY, licence_key):
        raise ConfigurationError("the licence key must be 8 to 128 printable ASCII characters")


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def check_product(product: str) -> None:
    if not _matches(_PRODUCT, product):
        raise ConfigurationError("the product name must match [a-z0-9-]{1,32}")


def check_version(version: str) -> None:
    """The server's rule (app/core/versions.py): 1 to 32 characters of a PEP 440 or
    SemVer 2.0.0 version; the server refuses anything else, such as a host name."""
    if not 1 <= len(version) <= 32:
        raise ConfigurationError("the version must be 1 to 32 characters")
    if not (_PEP440.fullmatch(version) or _SEMVER.fullmatch(version)):
        raise ConfigurationError("the version must be a PEP 440 or SemVer version")


def check_computer_id(computer_id: str) -> None:
    if not _matches(_COMPUTER_ID, computer_id):
        raise ConfigurationError("the computer ID must be 16 to 128 of [A-Za-z0-9+/=_-]")


def check_user_count(user_count: int) -> None:
    if type(user_count) is not int or not 0 <= user_count <= _MAX_USER_COUNT:
        raise ConfigurationError(f"the user count must be an integer from 0 to {_MAX_USER_COUNT}")


def check_channel(channel: str) -> None:
    if not _matches(_CHANNEL, channel):
        raise ConfigurationError("the channel must match [a-z0-9-]{1,16}")


def check_signatures(signatures: Mapping[str, int]) -> None:
    if len(signatures) > _MAX_FEEDS:
        raise ConfigurationError(f"at most {_MAX_FEEDS} signature feeds")
    for feed, version in signatures.items():
        if not _matches(_FEED, feed) or not _is_feed_version(version):
            raise ConfigurationError(
                "signatures map feed names [a-z0-9-]{1,32} to integers 0..2**53"
            )


def _is_feed_version(version: object) -> bool:
    return type(version) is int and 0 <= version <= _MAX_FEED_VERSION


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


def prepare_ping(
    identity: Identity,
    *,
    user_count: int,
    signatures: Mapping[str, int] | None,
    channel: str | None,
) -> PreparedPing:
    """Check the per-call fields and serialise the body: only the contract's fields, compact."""
    check_user_count(user_count)
    body: dict[str, object] = {
        "licence_key": identity.licence_key,
        "product": identity.product,
        "version": identity.version,
        "computer_id": identity.computer_id,
        "user_count": user_count,
    }
    if channel is not None:
        check_channel(channel)
        body["channel"] = channel
    if signatures:
        check_signatures(signatures)
        body["signatures"] = dict(signatures)
    nonce = new_nonce()
    body["nonce"] = nonce
    encoded = json.dumps(body, separators=(",", ":")).encode("ascii")
    if len(encoded) > MAX_REQUEST_BYTES:
        raise ConfigurationError(f"the ping body exceeds {MAX_REQUEST_BYTES} bytes")
    return PreparedPing(body=encoded, nonce=nonce)


def prepare_deactivation(identity: Identity) -> PreparedPing:
    """The deactivation request: the machine named as the ping names it, and a nonce."""
    nonce = new_nonce()
    body = {
        "licence_key": identity.licence_key,
        "product": identity.product,
        "computer_id": identity.computer_id,
        "nonce": nonce,
    }
    return PreparedPing(body=json.dumps(body, separators=(",", ":")).encode("ascii"), nonce=nonce)


def request_digest(body: bytes) -> str:
    """The lowercase hex SHA-256 the answer's request_sha256 must equal."""
    return hashlib.sha256(body).hexdigest()
