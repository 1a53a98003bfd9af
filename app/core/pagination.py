"""Opaque, stable cursors for keyset pagination of staff lists."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, TypeAdapter
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import InvalidInput
from app.core.json import dumps

Row = TypeVar("Row")
Shape = TypeVar("Shape")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def _in_utc(moment: dt.datetime) -> dt.datetime:
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError as error:
        raise ValueError("out of range") from error


# What a cursor field may hold: exactly what the server writes, within what the
# columns compared against it can store (anything else is a cursor we never made).
CursorMoment = Annotated[AwareDatetime, AfterValidator(_in_utc)]
CursorInt32 = Annotated[int, Field(ge=0, le=2**31 - 1)]
CursorInt64 = Annotated[int, Field(ge=0, le=2**63 - 1)]

# A cursor on the wire: base64url text, so nothing else reaches the decoder.
CursorQuery = Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_=-]*$")]

_NOT_OURS = "The cursor is not one this server issued"


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(dumps(list(values))).decode().rstrip("=")


_READERS: dict[Any, TypeAdapter[Any]] = {}


def _reader(shape: Any) -> TypeAdapter[Any]:
    reader = _READERS.get(shape)
    if reader is None:
        reader = _READERS[shape] = TypeAdapter(shape, config=ConfigDict(strict=True))
    return reader


def decode_cursor(cursor: str, shape: type[Shape]) -> Shape:
    """The cursor's fields as the tuple type `shape` says, each checked for type and range:
    strictly, so `true` is no number and a number no text."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = base64.urlsafe_b64decode(padded.encode())
        values: Shape = _reader(shape).validate_json(document)
    except (binascii.Error, ValueError, UnicodeError) as error:
        # ValidationError is a ValueError, and never quotes the cursor here.
        raise InvalidInput(_NOT_OURS) from error
    return values


async def newest_first(
    session: AsyncSession,
    query: Select[Row],
    created_at: InstrumentedAttribute[dt.datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[Row], str | None]:
    """A page of `query`, newest first, by keyset on (created_at, id): a page never
    repeats or skips a row as others arrive."""
    if cursor:
        after = decode_cursor(cursor, tuple[CursorMoment, uuid.UUID])
        query = query.where(
            or_(created_at < after[0], and_(created_at == after[0], row_id < after[1]))
        )
    query = query.order_by(created_at.desc(), row_id.desc()).limit(limit + 1)
    rows = list(await session.scalars(query))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(
        getattr(last, created_at.key).isoformat(), str(getattr(last, row_id.key))
    )
