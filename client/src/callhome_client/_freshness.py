"""Freshness of signed documents: none expired, none older than one of its kind already trusted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ._exceptions import ExpiredAnswerError, MalformedAnswerError, RollbackError
from ._time import format_rfc3339, parse_rfc3339

VERDICT = "verdict"
"""The kind of the ping's answer; news answers are `updates:<product>` and `feed:<name>`."""

# A clock corrected after the last check-in (or the reverse) may sit a little behind the
# newest trusted time without having been set back: this much is not read as a rollback.
CLOCK_TOLERANCE_S = 300.0


@dataclass(frozen=True)
class Window:
    """When a signed document was issued and until when it may be trusted."""

    issued_at: datetime
    expires_at: datetime


def window_of(document: dict[str, Any]) -> Window:
    """The document's `issued_at` and `expires_at`, both required."""
    times: list[datetime] = []
    for name in ("issued_at", "expires_at"):
        value = document.get(name)
        try:
            if not isinstance(value, str):
                raise ValueError(name)
            times.append(parse_rfc3339(value))
        except ValueError:
            raise MalformedAnswerError(f"answer field {name} is missing or no timestamp") from None
    issued_at, expires_at = times
    if expires_at <= issued_at:
        raise MalformedAnswerError("the answer expires before it is issued")
    return Window(issued_at, expires_at)


@dataclass
class TrustRecord:
    """What this install has trusted so far; persisted so a restart cannot be replayed past it."""

    newest_issued_at: dict[str, datetime] = field(default_factory=dict)
    """Per kind of document, the issued_at of the newest one trusted."""
    skew_s: float = 0.0
    """The server's clock minus this machine's, as last measured."""
    key_document: dict[str, Any] | None = None
    """The last verified GET /v1/keys document (key list and root chain), verified again on load."""
    clock_reached_at: datetime | None = None
    """A time this machine's clock is known to have passed: the end of an offline licence
    file it saw expire. Nothing is judged as of an earlier time, so setting the clock back
    cannot bring an ended file back."""

    @property
    def trusted_time_at(self) -> datetime | None:
        """The newest time the server vouched for, or the clock was seen past: the clock may
        not be behind it."""
        known = [*self.newest_issued_at.values(), self.clock_reached_at]
        return max((moment for moment in known if moment is not None), default=None)

    def judged_at(self, now: datetime) -> datetime:
        """The time to judge an offline document by: `now`, never before the clock was seen."""
        reached = self.clock_reached_at
        return now if reached is None else max(now, reached)

    def reach(self, moment: datetime) -> bool:
        """Note that the clock has passed `moment`; True when that moved the record on."""
        if self.clock_reached_at is not None and self.clock_reached_at >= moment:
            return False
        self.clock_reached_at = moment
        return True

    def check(self, kind: str, document: dict[str, Any], now: datetime) -> Window:
        """The document's window, unless it has expired or is older than one already trusted."""
        window = window_of(document)
        if now >= window.expires_at:
            raise ExpiredAnswerError(
                f"the {kind} document expired at {format_rfc3339(window.expires_at)}"
            )
        newest = self.newest_issued_at.get(kind)
        if newest is not None and window.issued_at < newest:
            raise RollbackError(
                f"the {kind} document was issued before one already trusted "
                f"({format_rfc3339(newest)})"
            )
        return window

    def remember(self, kind: str, window: Window) -> bool:
        """Note a trusted document; True when that moved the record on (it should be saved)."""
        newest = self.newest_issued_at.get(kind)
        if newest is not None and newest >= window.issued_at:
            return False
        self.newest_issued_at[kind] = window.issued_at
        return True

    def clock_set_back(self, now: datetime) -> bool:
        """Whether `now` lies before the newest trusted time (beyond the tolerance)."""
        trusted = self.trusted_time_at
        return trusted is not None and now < trusted - timedelta(seconds=CLOCK_TOLERANCE_S)

    def to_json(self) -> dict[str, Any]:
        return {
            "newest_issued_at": {
                kind: format_rfc3339(moment)
                for kind, moment in sorted(self.newest_issued_at.items())
            },
            "skew_s": self.skew_s,
            "key_document": self.key_document,
            "clock_reached_at": (
                None if self.clock_reached_at is None else format_rfc3339(self.clock_reached_at)
            ),
        }

    @classmethod
    def from_json(cls, document: object) -> TrustRecord:
        """The record in a cache file; ValueError, KeyError or TypeError when malformed."""
        if not isinstance(document, dict):
            raise TypeError("the trust record is not an object")
        newest = document["newest_issued_at"]
        skew_s = document["skew_s"]
        if not isinstance(newest, dict) or not isinstance(skew_s, (int, float)):
            raise TypeError("the trust record has the wrong shape")
        key_document = document.get("key_document")
        if key_document is not None and not isinstance(key_document, dict):
            raise TypeError("the kept key list is not an object")
        # Absent from files written before offline licence files were recorded.
        clock_reached_at = document.get("clock_reached_at")
        return cls(
            {str(kind): parse_rfc3339(moment) for kind, moment in newest.items()},
            float(skew_s),
            key_document,
            None if clock_reached_at is None else parse_rfc3339(clock_reached_at),
        )
