"""Opaque, stable cursors for keyset pagination of staff lists."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from app.core.errors import InvalidInput
from app.core.json import dumps, loads

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
