"""A clock that tests move by hand, handed to the app in place of the system clock."""

from __future__ import annotations

import datetime as dt


class FrozenClock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime | None = None):
        self.current = now or dt.datetime.now(dt.UTC).replace(microsecond=0)

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)
