"""The server's Ed25519 key: every verdict is signed over its exact body bytes."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.signing import SigningKey

from app.core.secrets import MissingSecret, read_or_create_secret_file
from app.core.settings import Settings

SIGNATURE_HEADER = "Callhome-Signature"


def key_id(public_key_raw: bytes) -> str:
    return hashlib.sha256(public_key_raw).hexdigest()[:16]


class Signer:
    def __init__(self, private_key: Ed25519PrivateKey):
        # libsodium signs in about 60% of the time cryptography takes, and
        # Ed25519 is deterministic: the same key gives the same signature bytes.
        seed = private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        self._signing_key = SigningKey(seed)
        self.public_key_raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id(self.public_key_raw)
        self._header_prefix = f"keyid={self.key_id}, ed25519="

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key_raw).decode()

    def signature_header(self, body: bytes) -> str:
        signature = base64.b64encode(self._signing_key.sign(body).signature).decode()
        return self._header_prefix + signature


def new_private_key_pem() -> bytes:
    """A fresh key in the file format load_signer reads."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_signer(settings: Settings) -> Signer:
    path: Path
    if settings.signing_key_file is not None:
        path = settings.signing_key_file
        if not path.exists():
            raise MissingSecret(f"CALLHOME_SIGNING_KEY_FILE {path} does not exist")
        pem = path.read_bytes()
    elif settings.is_embedded:
        pem = read_or_create_secret_file(
            settings.data_dir / "signing-key.pem", new_private_key_pem()
        )
    else:
        raise MissingSecret("CALLHOME_SIGNING_KEY_FILE is required outside the embedded default")
    return signer_from_pem(pem)


def signer_from_pem(pem: bytes) -> Signer:
    private_key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise MissingSecret("the signing key is not an Ed25519 private key")
    return Signer(private_key)
