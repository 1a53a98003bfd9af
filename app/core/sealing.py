"""Secrets the server must read back, sealed under a key kept outside the database."""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# The form's version: a sealed value starts with it, so another form can follow this one.
SEALED_PREFIX = "v1."
NONCE_BYTES = 12


class Unsealable(Exception):
    """A sealed value this key cannot open: another key sealed it, or it was altered."""


class Sealer:
    """AES-256-GCM under a key derived (HKDF-SHA256) from a root key for one purpose only, so
    the root key's other uses and this one never share key material. Each value is bound to
    the row it belongs to (`bound_to`, authenticated, not stored): a sealed value copied to
    another row does not open."""

    def __init__(self, root_key: bytes, purpose: str):
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=f"callhome sealing: {purpose}".encode(),
        ).derive(root_key)
        self._aead = AESGCM(key)

    def seal(self, value: str, *, bound_to: bytes) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, value.encode(), bound_to)
        return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode()

    def open(self, sealed: str, *, bound_to: bytes) -> str:
        if not sealed.startswith(SEALED_PREFIX):
            raise Unsealable("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(sealed.removeprefix(SEALED_PREFIX))
            opened = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], bound_to)
        except (InvalidTag, ValueError) as error:
            raise Unsealable("the value does not open under this key") from error
        return opened.decode()
