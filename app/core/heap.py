"""The cycle collector kept from stopping a serving process for a tenth of a second.

A full collection walks every object the collector tracks. A started server holds
about 170,000 that live as long as it does (modules, routes, schemas, the engine), and
each full pass over them held the event loop, and every ping waiting on it, for 70 to
110 ms: the ping's p99 at a steady rate was those pauses (loadtest/README.md). Frozen
once the app has started, they are out of the collector's sight; it still collects
what the requests leave behind.
"""

from __future__ import annotations

import gc


def freeze_what_lives_for_good() -> None:
    """Collect once, then move every object left into the permanent generation."""
    gc.collect()
    gc.freeze()
