"""The ping contract: what an install may send, and the shape of the signed answer."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.schemas import Name, StrictModel
from app.core.versions import is_version
from app.releases.catalog import DEFAULT_CHANNEL

FeedVersion = Annotated[int, Field(strict=True, ge=0, le=2**53)]


def _version(text: str) -> str:
    if not is_version(text):
        # Free text (a host or user name) has no place in a column kept for years.
        raise ValueError("not a PEP 440 or SemVer version")
    return text


class PingRequest(StrictModel):
    """Exactly the fields the contract declares: the server cannot be made to collect more."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    licence_key: Annotated[
        str, StringConstraints(min_length=8, max_length=128, pattern=r"^[\x20-\x7e]+$")
    ]
    product: Name
    version: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z0-9.+!_-]{1,32}$"),
        AfterValidator(_version),
    ]
    computer_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/=_-]{16,128}$")]
    user_count: Annotated[int, Field(strict=True, ge=0, le=10_000_000)]
    channel: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,16}$")] = DEFAULT_CHANNEL
    signatures: Annotated[dict[Name, FeedVersion], Field(max_length=16)] | None = None
    nonce: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")] | None = None


class Seats(BaseModel):
    allowed: int
    active: int
    over_limit: bool
    seat: Literal["granted", "denied"]


class LicenceVerdict(BaseModel):
    status: Literal["valid", "expired", "revoked", "suspended", "unknown"]
    expires_at: dt.datetime | None
    max_users: int | None
    users_over_limit: bool
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


class SignatureSet(BaseModel):
    version: int
    url: str
    sha256: str
    size: int
    delta: Delta | None


class PingAnswer(BaseModel):
    """Documents the answer; the body is built and signed by the ping service."""

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


class PublicKeys(BaseModel):
    keys: list[PublicKey]
