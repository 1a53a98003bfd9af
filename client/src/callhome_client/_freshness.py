"""Freshness of signed documents: none expired, none older than one of its kind already trusted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ._constants import CLOCK_RECORD_INTERVAL_S
from ._exceptions import ExpiredAnswerError, MalformedAnswerError, RollbackError
from ._keylist import key_list_version
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
    """The server's clock minus this machine's, as measured by the answer of answered_at."""
    key_document: dict[str, Any] | None = None
    """The last verified GET /v1/keys document (key list and root chain), verified again on load."""
    clock_reached_at: datetime | None = None
    """The latest moment this machine's clock has been seen at: the server's time of the
    newest answer to its own request, then the clock at each offline check (of the kept
    verdict or a licence file). Nothing is judged as of an earlier time, so setting the
    clock back cannot bring back a lease or a file seen ended."""
    answered_at: datetime | None = None
    """The server's time in the newest answer bound to this machine's own request (by its
    nonce): the true time then. It restarts clock_reached_at, so a moment seen on a clock
    that ran ahead costs the offline verdict only until the server answers."""

    @property
    def trusted_time_at(self) -> datetime | None:
        """The newest time the server vouched for, or the clock was seen at: the clock may
        not be behind it."""
        known = [*self.newest_issued_at.values(), self.clock_reached_at]
        return max((moment for moment in known if moment is not None), default=None)

    def judged_at(self, now: datetime) -> datetime:
        """The time to judge an offline document by: `now`, never before the clock was seen."""
        reached = self.clock_reached_at
        return now if reached is None else max(now, reached)

    def reach(self, moment: datetime) -> bool:
        """Note that the clock has been seen at `moment`; True when that moved the record on."""
        if self.clock_reached_at is not None and self.clock_reached_at >= moment:
            return False
        self.clock_reached_at = moment
        return True

    def clock_due(self, written_at: datetime | None, *, passed: datetime | None = None) -> bool:
        """Whether to write the clock reached over `written_at`, the moment the file holds:
        once it has moved on a while (a product may check in a loop), or at once when the
        file does not yet hold that the clock has `passed` an end found over (a lease, a
        licence file), which must hold after a restart."""
        reached = self.clock_reached_at
        if reached is None or written_at is None:
            return reached is not None
        if passed is not None and written_at < passed:
            return True
        return reached - written_at >= timedelta(seconds=CLOCK_RECORD_INTERVAL_S)

    def answered(self, server_time_at: datetime, skew_s: float) -> None:
        """Note the server's time of a fresh answer, and the skew it measured."""
        if self.answered_at is not None and server_time_at <= self.answered_at:
            # an answer as new is recorded already (another process's, or another server's
            # whose clock is a moment behind): this one only counts as a moment seen
            self.reach(server_time_at)
            return
        self.answered_at = server_time_at
        self.skew_s = skew_s
        self.clock_reached_at = server_time_at

    def merged(self, other: TrustRecord) -> TrustRecord:
        """This record and `other` (another writer's) in one, each entry the newer of the
        two, so none goes back: per kind the later issued_at; the key list of the higher
        version; the skew and the clock reached of the later answer, then of the later
        clock reached. On a tie, other's."""
        newest = dict(self.newest_issued_at)
        for kind, moment in other.newest_issued_at.items():
            newest[kind] = max(moment, newest.get(kind, moment))
        clock = max((other, self), key=_clock_order)
        keys = max((other, self), key=_key_list_order)
        return TrustRecord(
            newest, clock.skew_s, keys.key_document, clock.clock_reached_at, clock.answered_at
        )

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
            "clock_reached_at": _optional_time(self.clock_reached_at),
            "answered_at": _optional_time(self.answered_at),
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
        # Absent from files written before offline licence files, or answers, were recorded.
        return cls(
            {str(kind): parse_rfc3339(moment) for kind, moment in newest.items()},
            float(skew_s),
            key_document,
            _parse_optional_time(document.get("clock_reached_at")),
            _parse_optional_time(document.get("answered_at")),
        )


_NEVER = datetime.min.replace(tzinfo=timezone.utc)


def _optional_time(moment: datetime | None) -> str | None:
    return None if moment is None else format_rfc3339(moment)


def _parse_optional_time(text: str | None) -> datetime | None:
    return None if text is None else parse_rfc3339(text)


def _clock_order(record: TrustRecord) -> tuple[datetime, datetime]:
    return (record.answered_at or _NEVER, record.clock_reached_at or _NEVER)


def _key_list_order(record: TrustRecord) -> int:
    if record.key_document is None:
        return -1
    try:
        return key_list_version(record.key_document)
    except (KeyError, TypeError, ValueError, AttributeError):
        return -1  # a kept list that cannot be read is verified again, and refused, on load
