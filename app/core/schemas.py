"""Wire-model building blocks shared by every domain."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, StringConstraints


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


Moment = Annotated[AwareDatetime, BeforeValidator(_midnight_utc)]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")]
PRODUCT_PATTERN = r"^[a-z0-9-]{1,32}$"
