"""The signed key list: an offline root key vouches for the online signing keys, each with
its validity window, and each new root is vouched for by the one before (docs/protocol.md)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from app.core.clock import rfc3339
from app.core.secrets import MissingSecret
from app.core.settings import Settings
from app.core.signing import Signer, key_id

KEY_LIST_TYPE = "callhome-key-list"
ROOT_TYPE = "callhome-root"
KEY_LIST_FILE_NAME = "key-list.json"
DEFAULT_VALID_DAYS = 365


class KeyListError(ValueError):
    """A key list or root chain that does not hold together, or a change it cannot take."""


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class ListedKey:
    """An online signing key and the window in which documents it signs are trusted."""

    keyid: str
    public_key: str
    not_before: dt.datetime
    not_after: dt.datetime | None

    def valid_at(self, moment: dt.datetime) -> bool:
        return self.not_before <= moment and (self.not_after is None or moment < self.not_after)

    def to_json(self) -> dict[str, Any]:
        return {
            "keyid": self.keyid,
            "algorithm": "ed25519",
            "public_key": self.public_key,
            "not_before": rfc3339(self.not_before),
            "not_after": None if self.not_after is None else rfc3339(self.not_after),
        }

    @classmethod
    def of(cls, entry: dict[str, Any]) -> ListedKey:
        return cls(
            keyid=entry["keyid"],
            public_key=entry["public_key"],
            not_before=_parse_time(entry["not_before"]),
            not_after=None if entry["not_after"] is None else _parse_time(entry["not_after"]),
        )


@dataclass(frozen=True)
class KeyList:
    version: int
    issued_at: dt.datetime
    expires_at: dt.datetime
    root_keyid: str
    keys: tuple[ListedKey, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": KEY_LIST_TYPE,
            "version": self.version,
            "issued_at": rfc3339(self.issued_at),
            "expires_at": rfc3339(self.expires_at),
            "root_keyid": self.root_keyid,
            "keys": [key.to_json() for key in self.keys],
        }

    @classmethod
    def of(cls, payload: dict[str, Any]) -> KeyList:
        if payload.get("type") != KEY_LIST_TYPE:
            raise KeyListError("not a callhome key list")
        return cls(
            version=payload["version"],
            issued_at=_parse_time(payload["issued_at"]),
            expires_at=_parse_time(payload["expires_at"]),
            root_keyid=payload["root_keyid"],
            keys=tuple(ListedKey.of(entry) for entry in payload["keys"]),
        )


def public_key_b64(private_key: SigningKey) -> str:
    return base64.b64encode(bytes(private_key.verify_key)).decode()


def keyid_of(private_key: SigningKey) -> str:
    return key_id(bytes(private_key.verify_key))


def seal(payload: dict[str, Any], *signers: SigningKey) -> dict[str, Any]:
    """An envelope: the payload's exact JSON text, and signatures over its UTF-8 bytes.
    Signing text, not re-serialised JSON, spares every verifier a canonical JSON form."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    return {
        "payload": text,
        "signatures": [
            {
                "keyid": keyid_of(signer),
                "ed25519": base64.b64encode(signer.sign(text.encode()).signature).decode(),
            }
            for signer in signers
        ],
    }


def open_envelope(envelope: dict[str, Any], public_keys: dict[str, str]) -> dict[str, Any]:
    """The payload, once every key of `public_keys` (keyid -> base64) has signed it."""
    text = envelope["payload"]
    signatures = {entry["keyid"]: entry["ed25519"] for entry in envelope["signatures"]}
    for keyid, public_key in public_keys.items():
        if keyid not in signatures:
            raise KeyListError(f"the envelope lacks the signature of {keyid}")
        try:
            VerifyKey(base64.b64decode(public_key)).verify(
                text.encode(), base64.b64decode(signatures[keyid])
            )
        except (BadSignatureError, binascii.Error, ValueError) as error:
            raise KeyListError(f"the signature of {keyid} does not verify") from error
    payload: dict[str, Any] = json.loads(text)
    return payload


@dataclass(frozen=True)
class RootEntry:
    version: int
    keyid: str
    public_key: str


def _root_payload(version: int, root: SigningKey, now: dt.datetime) -> dict[str, Any]:
    return {
        "type": ROOT_TYPE,
        "version": version,
        "keyid": keyid_of(root),
        "public_key": public_key_b64(root),
        "issued_at": rfc3339(now),
    }


def follow_root_chain(chain: list[dict[str, Any]], pinned: dict[str, str]) -> RootEntry:
    """The newest root, reached from a pinned one (keyid -> base64) along the chain: root
    N+1 must be signed by root N and by itself."""
    current: RootEntry | None = None
    for envelope in chain:
        payload = json.loads(envelope["payload"])
        if payload.get("type") != ROOT_TYPE:
            raise KeyListError("a root chain entry is not a callhome root")
        entry = RootEntry(payload["version"], payload["keyid"], payload["public_key"])
        if key_id(base64.b64decode(entry.public_key)) != entry.keyid:
            raise KeyListError("a root's keyid does not match its key")
        if current is None:
            if entry.keyid not in pinned:
                continue  # older roots than the one pinned
            open_envelope(envelope, {entry.keyid: entry.public_key})
        else:
            if entry.version != current.version + 1:
                raise KeyListError("the root chain skips a version")
            open_envelope(
                envelope, {current.keyid: current.public_key, entry.keyid: entry.public_key}
            )
        current = entry
    if current is None:
        raise KeyListError("no root in the chain is a pinned root")
    return current


@dataclass(frozen=True)
class PublishedKeys:
    """The key list and the root chain, as served at GET /v1/keys and kept in a file."""

    key_list_envelope: dict[str, Any]
    root_chain: list[dict[str, Any]]

    @property
    def key_list(self) -> KeyList:
        return KeyList.of(json.loads(self.key_list_envelope["payload"]))

    def root(self) -> RootEntry:
        """The newest root, checked along the whole chain from its first entry."""
        first = json.loads(self.root_chain[0]["payload"])
        return follow_root_chain(self.root_chain, {first["keyid"]: first["public_key"]})

    def verified_key_list(self) -> KeyList:
        """The key list, once the chain holds and its newest root signed the list."""
        root = self.root()
        key_list = KeyList.of(open_envelope(self.key_list_envelope, {root.keyid: root.public_key}))
        if key_list.root_keyid != root.keyid:
            raise KeyListError("the key list names another root")
        return key_list

    def to_json(self) -> dict[str, Any]:
        return {"key_list": self.key_list_envelope, "root_chain": self.root_chain}

    @classmethod
    def of(cls, document: dict[str, Any]) -> PublishedKeys:
        return cls(document["key_list"], list(document["root_chain"]))

    @classmethod
    def read(cls, path: Path) -> PublishedKeys:
        try:
            published = cls.of(json.loads(path.read_bytes()))
            published.verified_key_list()
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise KeyListError(f"{path} is not a valid key list: {error}") from error
        return published

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        temporary.replace(path)


def _resign(
    key_list: KeyList, root: SigningKey, now: dt.datetime, valid_days: int
) -> dict[str, Any]:
    renewed = replace(
        key_list,
        version=key_list.version + 1,
        issued_at=now,
        expires_at=now + dt.timedelta(days=valid_days),
        root_keyid=keyid_of(root),
    )
    return seal(renewed.to_json(), root)


def first_key_list(
    root: SigningKey, online_public_key_raw: bytes, now: dt.datetime, valid_days: int
) -> PublishedKeys:
    """The first key list: the one online key, valid from now, signed by a new root."""
    online = ListedKey(
        key_id(online_public_key_raw),
        base64.b64encode(online_public_key_raw).decode(),
        now,
        None,
    )
    empty = KeyList(0, now, now, keyid_of(root), (online,))
    return PublishedKeys(
        _resign(empty, root, now, valid_days), [seal(_root_payload(1, root, now), root)]
    )


def _require_root(published: PublishedKeys, root: SigningKey) -> None:
    if published.root().keyid != keyid_of(root):
        raise KeyListError("that root key is not the current root of this key list")


def add_key(
    published: PublishedKeys,
    root: SigningKey,
    public_key_raw: bytes,
    now: dt.datetime,
    valid_days: int,
) -> PublishedKeys:
    _require_root(published, root)
    key_list = published.verified_key_list()
    new_key = ListedKey(
        key_id(public_key_raw), base64.b64encode(public_key_raw).decode(), now, None
    )
    if any(key.keyid == new_key.keyid for key in key_list.keys):
        raise KeyListError("that key is already listed")
    grown = replace(key_list, keys=(*key_list.keys, new_key))
    return replace(published, key_list_envelope=_resign(grown, root, now, valid_days))


def retire_key(
    published: PublishedKeys, root: SigningKey, keyid: str, now: dt.datetime, valid_days: int
) -> PublishedKeys:
    _require_root(published, root)
    key_list = published.verified_key_list()
    if not any(key.keyid == keyid and key.valid_at(now) for key in key_list.keys):
        raise KeyListError(f"no key {keyid} is in force")
    if not any(key.keyid != keyid and key.valid_at(now) for key in key_list.keys):
        raise KeyListError("that is the last key in force: rotate in a new one first")
    keys = tuple(
        replace(key, not_after=now) if key.keyid == keyid else key for key in key_list.keys
    )
    return replace(
        published,
        key_list_envelope=_resign(replace(key_list, keys=keys), root, now, valid_days),
    )


def renew(
    published: PublishedKeys, root: SigningKey, now: dt.datetime, valid_days: int
) -> PublishedKeys:
    """The same keys under a fresh issued_at and expiry (before the list expires)."""
    _require_root(published, root)
    key_list = published.verified_key_list()
    return replace(published, key_list_envelope=_resign(key_list, root, now, valid_days))


def rotate_root(
    published: PublishedKeys,
    old_root: SigningKey,
    new_root: SigningKey,
    now: dt.datetime,
    valid_days: int,
) -> PublishedKeys:
    """Append the new root, signed by the old and by itself, and re-sign the list with it."""
    _require_root(published, old_root)
    version = published.root().version + 1
    entry = seal(_root_payload(version, new_root, now), old_root, new_root)
    key_list = published.verified_key_list()
    return PublishedKeys(
        _resign(key_list, new_root, now, valid_days), [*published.root_chain, entry]
    )


def read_private_key(path: Path) -> SigningKey:
    return private_key_of(path.read_bytes(), str(path))


def private_key_of(pem: bytes, name: str = "the key") -> SigningKey:
    private_key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise KeyListError(f"{name} is not an Ed25519 private key")
    return SigningKey(
        private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    )


def key_list_path(settings: Settings) -> Path | None:
    """Where this node reads its key list: configured, or in the embedded default's data dir."""
    if settings.key_list_file is not None:
        return settings.key_list_file
    return settings.data_dir / KEY_LIST_FILE_NAME if settings.is_embedded else None


class KeyDirectory:
    """What GET /v1/keys serves: the signing key, and the signed key list when there is one."""

    def __init__(self, signer: Signer, published: PublishedKeys | None):
        self.signer = signer
        self.published = published

    def answer(self, now: dt.datetime) -> dict[str, Any]:
        if self.published is None:
            key = {
                "keyid": self.signer.key_id,
                "algorithm": "ed25519",
                "public_key": self.signer.public_key_b64,
            }
            return {"keys": [key], "key_list": None, "root_chain": []}
        in_force = [
            {"keyid": key.keyid, "algorithm": "ed25519", "public_key": key.public_key}
            for key in self.published.key_list.keys
            if key.valid_at(now)
        ]
        return {"keys": in_force, **self.published.to_json()}


def load_key_directory(settings: Settings, signer: Signer, now: dt.datetime) -> KeyDirectory:
    """The key list this node serves; refused when the signing key is not one in force."""
    path = key_list_path(settings)
    if path is None or (settings.key_list_file is None and not path.exists()):
        return KeyDirectory(signer, None)
    if not path.exists():
        raise MissingSecret(f"CALLHOME_KEY_LIST_FILE {path} does not exist")
    try:
        published = PublishedKeys.read(path)
    except KeyListError as error:
        raise MissingSecret(str(error)) from error
    listed = {key.keyid: key for key in published.key_list.keys}
    key = listed.get(signer.key_id)
    if key is None or not key.valid_at(now):
        raise MissingSecret(f"the signing key {signer.key_id} is not in force in the key list")
    return KeyDirectory(signer, published)
