"""Wire models of the customer's calls: exactly the fields they declare, as the ping's are."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.schemas import Name, StrictModel
from app.ping.schemas import ComputerId, LicenceKey, Nonce, Version


class DeactivateRequest(StrictModel):
    """Which machine to free: named as the ping names it, by key, product and computer ID."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    licence_key: LicenceKey
    product: Name
    computer_id: ComputerId
    nonce: Nonce | None = None


class DeactivateAnswer(BaseModel):
    """Documents the answer; the body is built and signed by the deactivation service."""

    status: Literal["deactivated", "not_seated", "unknown"] = Field(
        description="deactivated: the seat is free now; not_seated: it held none (a second "
        "call); unknown: no licence of this product has the key"
    )
    this_machine: str | None = Field(description="The machine's short reference")
    issued_at: dt.datetime
    expires_at: dt.datetime = Field(description="Trust this answer until then, no longer")
    nonce: str | None
    request_sha256: str = Field(description="SHA-256 hex of the exact request body")


class OfflineRequest(StrictModel):
    """An offline activation request as the SDK writes it: these four fields, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    licence_key: LicenceKey
    product: Name
    computer_id: ComputerId
    version: Version
