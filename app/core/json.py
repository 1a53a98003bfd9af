"""Fast, canonical JSON (orjson) used for answers and stored documents alike."""

from __future__ import annotations

import uuid
from typing import Any

import orjson


def _uuid_subclass(value: Any) -> str:
    # orjson writes uuid.UUID itself but not its subclasses, which PostgreSQL's driver
    # hands out for every uuid column.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return orjson.dumps(
        value, default=_uuid_subclass, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
    )


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
