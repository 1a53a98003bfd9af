"""Pinned Ed25519 public keys and the check of the Callhome-Signature header."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._exceptions import ConfigurationError, SignatureError, UnknownKeyError
from ._keylist import KeyList, ListedKey

_ED25519_KEY_BYTES = 32
_ED25519_SIGNATURE_BYTES = 64


def key_id(raw_public_key: bytes) -> str:
    """The keyid of a public key: the first 16 hex characters of SHA-256 of its raw bytes."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def strict_base64(text: str) -> bytes:
    return base64.b64decode(text.strip(), validate=True)


class PinnedKeys:
    """The public keys an answer may be signed with: those pinned in the product (two during
    a key rotation), and those a key list signed by a pinned root vouches for, each only
    within its validity window."""

    def __init__(self, public_keys: Iterable[str], root_keys: Iterable[str] = ()) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for encoded in public_keys:
            raw = self._decode(encoded)
            self._keys[key_id(raw)] = Ed25519PublicKey.from_public_bytes(raw)
        self.roots = {key_id(self._decode(encoded)): encoded.strip() for encoded in root_keys}
        if not self._keys and not self.roots:
            raise ConfigurationError("at least one pinned public key or root key is required")
        self._listed: dict[str, tuple[Ed25519PublicKey, ListedKey]] = {}

    def adopt(self, key_list: KeyList) -> None:
        """Trust the keys of a verified key list (in place of those of an earlier list)."""
        self._listed = {
            key.keyid: (Ed25519PublicKey.from_public_bytes(self._decode(key.public_key)), key)
            for key in key_list.keys
        }

    def check_window(self, keyid: str, issued_at: datetime) -> None:
        """Raise UnknownKeyError when a listed key signed a document outside its window."""
        listed = self._listed.get(keyid)
        if keyid not in self._keys and listed is not None and not listed[1].valid_at(issued_at):
            raise UnknownKeyError(f"key {keyid} was not in force when the document was issued")

    @staticmethod
    def _decode(encoded: str) -> bytes:
        try:
            raw = strict_base64(encoded)
        except (binascii.Error, ValueError):
            raise ConfigurationError("a public key is not valid base64") from None
        if len(raw) != _ED25519_KEY_BYTES:
            raise ConfigurationError("a public key is not 32 raw Ed25519 bytes in base64")
        return raw

    def verify(self, signature_header: str | None, body: bytes) -> str:
        """The keyid, once the header holds a trusted key's signature over body; else raise
        SignatureError (UnknownKeyError for a key neither pinned nor listed)."""
        if not signature_header:
            raise SignatureError("the answer is not signed")
        keyid, signature = _parse_signature_header(signature_header)
        public_key = self._keys.get(keyid)
        if public_key is None and keyid in self._listed:
            public_key = self._listed[keyid][0]
        if public_key is None:
            raise UnknownKeyError(f"the answer is signed by unknown key {keyid[:32]!r}")
        try:
            public_key.verify(signature, body)
        except InvalidSignature:
            raise SignatureError("the answer's signature does not verify") from None
        return keyid


def _parse_signature_header(header: str) -> tuple[str, bytes]:
    """Split `keyid=<id>, ed25519=<base64>` into the keyid and the raw signature."""
    parameters: dict[str, str] = {}
    for part in header.split(","):
        name, separator, value = part.strip().partition("=")
        if separator:
            parameters[name.strip().lower()] = value.strip()
    keyid = parameters.get("keyid")
    encoded = parameters.get("ed25519")
    if not keyid or not encoded:
        raise SignatureError("the signature header lacks keyid or ed25519")
    try:
        signature = strict_base64(encoded)
    except (binascii.Error, ValueError):
        raise SignatureError("the signature is not valid base64") from None
    if len(signature) != _ED25519_SIGNATURE_BYTES:
        raise SignatureError("the signature is not 64 bytes")
    return keyid, signature
