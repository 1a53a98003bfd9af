"""The key list (GET /v1/keys): followed from a pinned root along the root chain, then trusted."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._exceptions import MalformedAnswerError, SignatureError, UnknownKeyError
from ._time import parse_rfc3339

KEYS_PATH = "/v1/keys"
KEY_LIST_KIND = "keys"
"""The freshness kind of the key list: a list issued before the newest trusted is refused."""

_KEY_LIST_TYPE = "callhome-key-list"
_ROOT_TYPE = "callhome-root"


@dataclass(frozen=True)
class ListedKey:
    """An online signing key and the window in which what it signs is trusted."""

    keyid: str
    public_key: str
    not_before: datetime
    not_after: datetime | None

    def valid_at(self, moment: datetime) -> bool:
        return self.not_before <= moment and (self.not_after is None or moment < self.not_after)


@dataclass(frozen=True)
class KeyList:
    """A verified key list: its payload (for the freshness checks) and its keys."""

    payload: dict[str, Any]
    keys: tuple[ListedKey, ...]

    @property
    def version(self) -> int:
        version = self.payload.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise MalformedAnswerError("the key list has no version")
        return version


def key_list_version(document: dict[str, Any]) -> int:
    """The version of a kept GET /v1/keys document (verified when it was kept)."""
    version = json.loads(document["key_list"]["payload"]).get("version")
    return version if isinstance(version, int) else 0


def _verify(public_key_b64: str, signature_b64: str, message: bytes) -> bool:
    try:
        public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
        public_key.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def _open(envelope: object, signers: dict[str, str]) -> dict[str, Any]:
    """The payload of an envelope that every key of `signers` (keyid -> base64) signed."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("payload"), str):
        raise MalformedAnswerError("a key document envelope has no payload")
    text: str = envelope["payload"]
    signatures = {
        entry.get("keyid"): entry.get("ed25519")
        for entry in envelope.get("signatures") or []
        if isinstance(entry, dict)
    }
    for keyid, public_key in signers.items():
        signature = signatures.get(keyid)
        if not isinstance(signature, str) or not _verify(public_key, signature, text.encode()):
            raise SignatureError(f"the key document lacks a valid signature of {keyid}")
    try:
        payload = json.loads(text)
    except ValueError:
        raise MalformedAnswerError("a key document payload is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedAnswerError("a key document payload is not an object")
    return payload


def newest_root(chain: object, pinned_roots: dict[str, str]) -> tuple[str, str]:
    """(keyid, public key) of the newest root reached from a pinned root: each next root
    must carry the next version and be signed by the root before it and by itself."""
    if not isinstance(chain, list):
        raise MalformedAnswerError("the root chain is not a list")
    current: tuple[str, str, int] | None = None
    for envelope in chain:
        if not isinstance(envelope, dict) or not isinstance(envelope.get("payload"), str):
            raise MalformedAnswerError("a root chain entry has no payload")
        claimed = json.loads(envelope["payload"])
        keyid, public_key, version = (
            claimed.get("keyid"),
            claimed.get("public_key"),
            claimed.get("version"),
        )
        if (
            claimed.get("type") != _ROOT_TYPE
            or not isinstance(public_key, str)
            or not isinstance(version, int)
        ):
            raise MalformedAnswerError("a root chain entry is not a callhome root")
        if current is None:
            if keyid not in pinned_roots or pinned_roots[keyid] != public_key:
                continue  # a root older than the one this product pins
            _open(envelope, {keyid: public_key})
        else:
            if version != current[2] + 1:
                raise SignatureError("the root chain skips a version")
            _open(envelope, {current[0]: current[1], keyid: public_key})
        current = (keyid, public_key, version)
    if current is None:
        raise UnknownKeyError("no root in the served chain is a pinned root")
    return current[0], current[1]


def verify_key_list(document: object, pinned_roots: dict[str, str]) -> KeyList:
    """The key list of a GET /v1/keys document, verified from the pinned roots."""
    if not isinstance(document, dict) or document.get("key_list") is None:
        raise UnknownKeyError("the server publishes no key list signed by a root")
    root_keyid, root_key = newest_root(document.get("root_chain"), pinned_roots)
    payload = _open(document["key_list"], {root_keyid: root_key})
    if payload.get("type") != _KEY_LIST_TYPE or payload.get("root_keyid") != root_keyid:
        raise SignatureError("the key list is not one the newest root issued")
    try:
        keys = tuple(
            ListedKey(
                keyid=entry["keyid"],
                public_key=entry["public_key"],
                not_before=parse_rfc3339(entry["not_before"]),
                not_after=None if entry["not_after"] is None else parse_rfc3339(entry["not_after"]),
            )
            for entry in payload["keys"]
        )
    except (KeyError, TypeError, ValueError):
        raise MalformedAnswerError("the key list's keys are malformed") from None
    key_list = KeyList(payload, keys)
    _ = key_list.version  # a list without a version cannot be ordered against others
    return key_list
