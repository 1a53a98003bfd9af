"""The clock and the RFC 3339 timestamps of the callhome wire."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

Clock = Callable[[], datetime]
Monotonic = Callable[[], float]

# ASCII digits only, as every other reader of the wire (the C SDK among them) reads them.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
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
    try:
        return moment - sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    except OverflowError:
        raise ValueError("the timestamp lies outside the years 1 to 9999") from None


def format_rfc3339(moment: datetime) -> str:
    """Format an aware datetime the way the wire does: UTC, seconds, trailing Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class TrustedClock:
    """This machine's clock corrected by the skew measured against the server, and never
    running back within one run (a monotonic clock carries time on from the last answer)."""

    def __init__(
        self,
        wall: Clock,
        *,
        max_skew_s: float,
        skew_s: float = 0.0,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self.max_skew_s = max_skew_s
        self.skew_s = 0.0
        self.assume_skew(skew_s)
        self._anchor: tuple[datetime, float] | None = None

    def assume_skew(self, skew_s: float) -> None:
        """Correct by a skew measured in an earlier run (a skew beyond the bound is ignored)."""
        self.skew_s = skew_s if abs(skew_s) <= self.max_skew_s else 0.0

    def now(self) -> datetime:
        corrected = self._wall() + timedelta(seconds=self.skew_s)
        if self._anchor is None:
            return corrected
        anchored_at, anchored_monotonic = self._anchor
        # A wall clock set forward is believed (it only shortens trust); set back, it is not.
        return max(
            corrected, anchored_at + timedelta(seconds=self._monotonic() - anchored_monotonic)
        )

    def skew_of(self, server_time_at: datetime) -> float:
        """How far the server's clock is ahead of this machine's (negative: behind)."""
        return (server_time_at - self._wall()).total_seconds()

    def observe(self, server_time_at: datetime) -> None:
        """Take the server's time of a fresh answer as the reference from now on."""
        self.skew_s = self.skew_of(server_time_at)
        self._anchor = (server_time_at, self._monotonic())

    __call__ = now
