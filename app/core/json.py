"""Fast, canonical JSON (orjson) used for answers and stored documents alike."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
