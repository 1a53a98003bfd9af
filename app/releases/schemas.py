"""Wire models of release and feed publishing, and of the news answers installs read."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from packaging.version import InvalidVersion, Version
from pydantic import AfterValidator, Field, StringConstraints, model_validator

from app.core.schemas import Moment, Name, ResponseModel, StrictModel
from app.releases.models import URL_LENGTH

CHANNEL_PATTERN = r"^[a-z0-9-]{1,16}$"
# The ping's own version format; a release must also parse as a version.
VERSION_PATTERN = r"^[A-Za-z0-9.+!_-]{1,32}$"


def normalised_version(value: str) -> str:
    """packaging's spelling of `value`: 8.10 and 8.010 are one version; refuses non-versions."""
    try:
        normal = str(Version(value))
    except InvalidVersion as error:
        raise ValueError("not a version") from error
    if len(normal) > 32:
        raise ValueError("version too long")
    return normal


Channel = Annotated[str, StringConstraints(pattern=CHANNEL_PATTERN)]
VersionText = Annotated[
    str, StringConstraints(pattern=VERSION_PATTERN), AfterValidator(normalised_version)
]
Url = Annotated[str, StringConstraints(max_length=URL_LENGTH, pattern=r"^https?://[!-~]+$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Size = Annotated[int, Field(strict=True, ge=0, le=2**53)]
FeedVersionNumber = Annotated[int, Field(strict=True, ge=1, le=2**53)]
RolloutPercent = Annotated[int, Field(strict=True, ge=0, le=100)]


class ReleaseCreate(StrictModel):
    product: Name
    channel: Channel = "stable"
    version: VersionText
    published_at: Moment | None = Field(default=None, description="Now when absent")
    url: Url
    sha256: Sha256
    size: Size
    notes_url: Url | None = None
    critical: bool = False
    min_from_version: VersionText | None = Field(
        default=None, description="Older installs are first offered a stepping stone"
    )
    rollout_percent: RolloutPercent = 100


class ReleaseChange(StrictModel):
    """Only the fields present change. `halt` is rollout 0; a yank is for good."""

    rollout_percent: RolloutPercent | None = None
    critical: bool | None = None
    halt: Literal[True] | None = None
    yank: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_rollout(self) -> ReleaseChange:
        if self.halt and self.rollout_percent is not None:
            raise ValueError("halt and rollout_percent exclude each other")
        return self


class ReleaseOut(ResponseModel):
    id: uuid.UUID
    product: str
    channel: str
    version: str
    published_at: dt.datetime
    url: str
    sha256: str
    size: int
    notes_url: str | None
    critical: bool
    min_from_version: str | None
    rollout_percent: int
    yanked_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ReleasePage(ResponseModel):
    items: list[ReleaseOut]
    next_cursor: str | None


class DeltaIn(StrictModel):
    from_version: FeedVersionNumber = Field(alias="from")
    url: Url
    sha256: Sha256
    size: Size


class FeedVersionCreate(StrictModel):
    version: FeedVersionNumber
    url: Url
    sha256: Sha256
    size: Size
    min_product_version: VersionText | None = Field(
        default=None, description="The lowest product version that can load this set"
    )
    published_at: Moment | None = Field(default=None, description="Now when absent")
    deltas: Annotated[list[DeltaIn], Field(max_length=64)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _deltas_lead_here(self) -> FeedVersionCreate:
        origins = [delta.from_version for delta in self.deltas]
        if len(set(origins)) != len(origins):
            raise ValueError("one delta per earlier version")
        if any(origin >= self.version for origin in origins):
            raise ValueError("a delta leads from an earlier version")
        return self


class DeltaOut(ResponseModel):
    from_version: int = Field(serialization_alias="from")
    url: str
    sha256: str
    size: int


class FeedVersionOut(ResponseModel):
    feed: str
    version: int
    url: str
    sha256: str
    size: int
    min_product_version: str | None
    published_at: dt.datetime
    deltas: list[DeltaOut]


class FeedVersionPage(ResponseModel):
    items: list[FeedVersionOut]
    next_cursor: str | None


class FeedSummary(ResponseModel):
    feed: str
    latest_version: int
    versions: int


class FeedList(ResponseModel):
    items: list[FeedSummary]
