"""The ping contract: what an install may send, and the shape of the signed answer."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.schemas import Name, StrictModel
from app.core.versions import is_version
from app.releases.catalog import DEFAULT_CHANNEL

FeedVersion = Annotated[int, Field(strict=True, ge=0, le=2**53)]
LicenceKey = Annotated[
    str, StringConstraints(min_length=8, max_length=128, pattern=r"^[\x20-\x7e]+$")
]
ComputerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/=_-]{16,128}$")]
Nonce = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")]


def _version(text: str) -> str:
    if not is_version(text):
        # Free text (a host or user name) has no place in a column kept for years.
        raise ValueError("not a PEP 440 or SemVer version")
    return text


# What an install says it runs, in a ping, a deactivation or an offline request: a
# version by PEP 440 or SemVer (app/core/versions.py), never free text.
Version = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9.+!_-]{1,32}$"), AfterValidator(_version)
]


class PingRequest(StrictModel):
    """Exactly the fields the contract declares: the server cannot be made to collect more."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    licence_key: LicenceKey
    product: Name
    version: Version
    computer_id: ComputerId
    user_count: Annotated[int, Field(strict=True, ge=0, le=10_000_000)]
    channel: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,16}$")] = DEFAULT_CHANNEL
    signatures: Annotated[dict[Name, FeedVersion], Field(max_length=16)] | None = None
    nonce: Nonce | None = None


class Seats(BaseModel):
    allowed: int
    active: int
    over_limit: bool
    seat: Literal["granted", "denied"]
    this_machine: str | None = Field(
        description="This machine's short reference (12 hex digits), as staff see it"
    )
    floating: bool = Field(description="Seats are leases: check in before the lease lapses")


class LicenceVerdict(BaseModel):
    status: Literal["valid", "expired", "revoked", "suspended", "unknown"]
    expires_at: dt.datetime | None
    grace_until: dt.datetime | None = Field(
        description="Only after expiry, within grace: until when the product may keep working"
    )
    max_users: int | None
    users_over_limit: bool
    entitlements: list[str] = Field(description="The licence's paid add-ons and feeds")
    updates_until: dt.date | None = Field(description="Maintenance: updates released until then")
    machines: Seats


class Update(BaseModel):
    version: str
    url: str
    sha256: str
    size: int
    notes_url: str | None
    critical: bool


class Delta(BaseModel):
    from_: int = Field(alias="from")
    url: str
    sha256: str
    size: int


class ChainStep(BaseModel):
    from_: int = Field(alias="from")
    to: int
    url: str
    sha256: str
    size: int


class SignatureSet(BaseModel):
    version: int
    url: str
    sha256: str
    size: int
    delta: Delta | None = Field(description="The plan when it is one delta (older SDKs read it)")
    chain: list[ChainStep] = Field(
        description="The deltas to apply in order; empty: fetch the full set"
    )


class PingAnswer(BaseModel):
    """Documents the answer; the body is built and signed by the ping service."""

    issued_at: dt.datetime = Field(description="When the server answered (= server_time)")
    expires_at: dt.datetime = Field(
        description="When the verdict stops being trusted (= lease_expires)"
    )
    licence: LicenceVerdict
    update: Update | None
    signatures: dict[str, SignatureSet]
    next_check_in: int = Field(description="Seconds until the next ping, jittered")
    lease_expires: dt.datetime = Field(description="Trust this verdict offline until then")
    server_time: dt.datetime
    nonce: str | None
    request_sha256: str = Field(description="SHA-256 hex of the exact request body")


class PublicKey(BaseModel):
    keyid: str
    algorithm: Literal["ed25519"]
    public_key: str = Field(description="Base64 of the 32 raw public key bytes")


class SignedEnvelope(BaseModel):
    payload: str = Field(description="The signed document's exact JSON text")
    signatures: list[dict[str, str]] = Field(description="`{keyid, ed25519}` over its UTF-8 bytes")


class PublicKeys(BaseModel):
    keys: list[PublicKey] = Field(description="The signing keys in force now")
    key_list: SignedEnvelope | None = Field(
        description="The key list signed by the root key (null: no root key yet)"
    )
    root_chain: list[SignedEnvelope] = Field(
        description="Every root, oldest first, each signed by the one before and by itself"
    )
