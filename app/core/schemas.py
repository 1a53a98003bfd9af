"""Wire-model building blocks shared by every domain."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
)


class StrictModel(BaseModel):
    """A request body that refuses fields beyond its contract."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _midnight_utc(value: object) -> object:
    # A bare date means the start of that day in UTC.
    if isinstance(value, str) and len(value) == 10:
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return value


# Outside these a moment cannot be written as RFC 3339's four-digit year, or the
# store refuses it: the caller gets a 422, not a failure of ours.
EARLIEST_MOMENT = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST_MOMENT = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def _within_range(value: dt.datetime) -> dt.datetime:
    if not EARLIEST_MOMENT <= value <= LATEST_MOMENT:
        raise ValueError("a moment between 1970 and 9999 (UTC)")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_midnight_utc), AfterValidator(_within_range)]
# Free text in a filter: no control characters (PostgreSQL cannot even hold a NUL).
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f]+$"
# Free text of several lines: tabs and line breaks, but no other control characters.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$"
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")]
PRODUCT_PATTERN = r"^[a-z0-9-]{1,32}$"
