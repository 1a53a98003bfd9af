"""Opaque, stable cursors for keyset pagination of staff lists."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import InvalidInput
from app.core.json import dumps, loads

Row = TypeVar("Row")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeError) as error:
        raise InvalidInput("The cursor is not one this server issued") from error
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidInput("The cursor is not one this server issued")
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
        created_text, id_text = decode_cursor(cursor, 2)
        try:
            after = (dt.datetime.fromisoformat(created_text), uuid.UUID(id_text))
        except (TypeError, ValueError) as error:
            raise InvalidInput("The cursor is not one this server issued") from error
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
