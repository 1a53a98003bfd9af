"""The server steers the fleet's rhythm: `next_check_in` grows while the store is slow.

The signal is the batch writer's commit latency, smoothed over recent batches.
While it stays within `steer_commit_s` the fleet keeps the configured interval;
above it the interval is stretched in proportion (twice that latency, twice the
interval), up to `steer_max_factor`. Fewer calls come in until the store keeps up.
"""

from __future__ import annotations

from typing import Final

from app.core import metrics

# Weight of the newest batch in the smoothed latency: a few slow batches move
# it, a single hiccup does not move it far.
SMOOTHING: Final = 0.3


class Steering:
    def __init__(self, *, commit_s: float, max_factor: float):
        self._commit_s = commit_s
        self._max_factor = max_factor
        self._latency_s = 0.0
        # Read by every ping, so worked out once per batch instead.
        self.factor = 1.0

    def observe_commit(self, seconds: float) -> None:
        """One batch's commit latency; a failed batch counts with the time it took to fail."""
        self._latency_s += SMOOTHING * (seconds - self._latency_s)
        self.factor = min(self._max_factor, max(1.0, self._latency_s / self._commit_s))
        metrics.set_check_in_factor(self.factor)
