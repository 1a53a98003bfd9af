"""The one source of the current time, replaceable so tests can travel in time."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


def utc_midnight(day: dt.date) -> dt.datetime:
    """The moment a UTC calendar day begins."""
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def start_of_day(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@functools.lru_cache(maxsize=1024)
def _rfc3339_of_second(epoch_second: int) -> str:
    return dt.datetime.fromtimestamp(epoch_second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339(moment: dt.datetime) -> str:
    """RFC 3339 in UTC to the second; memoised, as every ping formats the same few seconds."""
    return _rfc3339_of_second(int(moment.timestamp()))
