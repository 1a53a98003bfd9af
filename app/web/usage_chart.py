"""A licence's use per day as bar charts the server draws (inline SVG): no script, no library."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.licences.models import Licence
from app.privacy.usage import daily_usage

DEFAULT_DAYS = 30

# The drawing's own units; CSS scales it to the width there is.
WIDTH, HEIGHT = 640, 160
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 24
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Bar:
    day: dt.date
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    """One measure per day, scaled to its own top; `limit_y` marks what the licence allows."""

    key: str
    title: str
    bars: list[Bar]
    top: int
    limit: int | None
    limit_y: float | None
    first_day: dt.date
    last_day: dt.date
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top_margin: int = TOP
    plot_width: int = PLOT_WIDTH
    plot_height: int = PLOT_HEIGHT

    @property
    def baseline(self) -> int:
        return TOP + PLOT_HEIGHT


def _nice_top(value: int) -> int:
    """The axis top: the largest value (or limit) rounded up to 1, 2 or 5 times a power of ten."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    top: int = next(step * power for step in (1, 2, 5, 10) if step * power >= value)
    return top


def chart(
    key: str, title: str, days: Sequence[dt.date], values: Sequence[int], limit: int | None
) -> Chart:
    top = _nice_top(max([*values, limit or 0]))
    slot = PLOT_WIDTH / len(days)
    bars = []
    for index, (day, value) in enumerate(zip(days, values, strict=True)):
        height = PLOT_HEIGHT * value / top
        bars.append(
            Bar(
                day=day,
                value=value,
                x=round(LEFT + index * slot + slot * 0.1, 2),
                y=round(TOP + PLOT_HEIGHT - height, 2),
                width=round(slot * 0.8, 2),
                height=round(height, 2),
            )
        )
    limit_y = None if limit is None else round(TOP + PLOT_HEIGHT - PLOT_HEIGHT * limit / top, 2)
    return Chart(key, title, bars, top, limit, limit_y, days[0], days[-1])


async def charts(
    session: AsyncSession, licence: Licence, *, today: dt.date, days: int
) -> list[Chart]:
    """Active machines, pings and peak users over the last `days` days, today included."""
    since = today - dt.timedelta(days=days - 1)
    by_day = {
        usage.day: usage
        for usage in await daily_usage(session, licence.id, since=since, until=today)
    }
    all_days = [since + dt.timedelta(days=offset) for offset in range(days)]

    def measure(name: str) -> list[int]:
        return [getattr(by_day[day], name) if day in by_day else 0 for day in all_days]

    return [
        chart(
            "machines", "Machines that pinged", all_days, measure("machines"), licence.max_machines
        ),
        chart("pings", "Pings", all_days, measure("pings"), None),
        chart("users", "Peak users", all_days, measure("peak_users"), licence.max_users),
    ]
