"""The clock and the RFC 3339 timestamps of the callhome wire."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

Clock = Callable[[], datetime]

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (the default clock)."""
    return datetime.now(timezone.utc)


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (fractional seconds and offsets allowed) into UTC."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("not an RFC 3339 timestamp")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    microsecond = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), microsecond,
        tzinfo=timezone.utc,
    )  # fmt: skip
    if offset in ("Z", "z"):
        return moment
    sign = 1 if offset[0] == "+" else -1
    return moment - sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))


def format_rfc3339(moment: datetime) -> str:
    """Format an aware datetime the way the wire does: UTC, seconds, trailing Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
