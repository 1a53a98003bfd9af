"""Prometheus metrics, and the /metrics page that sums them over the worker processes.

Every label comes from a small closed set (licence status, seat, route template,
method, status code, kind): never a key, licence, machine, network or address.
Labelled children the ping path touches are bound once here, not per ping.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from starlette.responses import Response

# prometheus-client's own switch: set before any worker imports it, every worker
# writes its values to files in this directory and any of them can sum them.
MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

# A `_created` timestamp beside every series doubles the page and tells an operator nothing.
disable_created_metrics()  # type: ignore[no-untyped-call]

LICENCE_STATUSES = ("valid", "expired", "revoked", "suspended", "unknown")
SEATS = ("granted", "denied")
RATE_LIMIT_KINDS = ("licence", "network")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BATCH_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

_pings = Counter(
    "callhome_pings",
    "Pings answered with a signed verdict, by licence status and seat.",
    ["status", "seat"],
)
_verdicts = {
    (status, seat): _pings.labels(status, seat) for status in LICENCE_STATUSES for seat in SEATS
}

_rate_limited = Counter(
    "callhome_rate_limited", "Pings refused with 429, by the limit they passed.", ["kind"]
)
_rate_limited_by_kind = {kind: _rate_limited.labels(kind) for kind in RATE_LIMIT_KINDS}

_cache_lookups = Counter(
    "callhome_licence_cache_lookups", "Licence cache lookups on the ping path.", ["result"]
)
_cache_hits = _cache_lookups.labels("hit")
_cache_misses = _cache_lookups.labels("miss")

_batch_size = Histogram(
    "callhome_batch_size",
    "Pings per group commit.",
    buckets=BATCH_SIZES,
)
_batch_commit = Histogram(
    "callhome_batch_commit_seconds",
    "Time to write and commit one batch of pings.",
    buckets=SECONDS,
)
_batch_failures = Counter("callhome_batch_failures", "Batches the store did not take.")
_queue_depth = Gauge(
    "callhome_writer_queue_depth",
    "Pings waiting for the next batch when one has committed.",
    multiprocess_mode="livesum",
)
_check_in_factor = Gauge(
    "callhome_check_in_factor",
    "How much the server stretches next_check_in under pressure.",
    multiprocess_mode="livemax",
)

_reports_opened = Counter(
    "callhome_abuse_reports_opened", "Abuse reports opened by this server's detection.", ["kind"]
)

WEBHOOK_OUTCOMES = ("delivered", "retrying", "failed")
_webhook_deliveries = Counter(
    "callhome_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, retrying (failed, tried again later) "
    "or failed (given up after the retry window).",
    ["outcome"],
)
_webhook_outcomes = {outcome: _webhook_deliveries.labels(outcome) for outcome in WEBHOOK_OUTCOMES}
_webhook_queue_depth = Gauge(
    "callhome_webhook_queue_depth",
    "Webhook deliveries (and events not yet planned) waiting to be sent.",
    multiprocess_mode="livemax",
)
_webhook_oldest = Gauge(
    "callhome_webhook_oldest_undelivered_seconds",
    "Age of the oldest event still waiting to be delivered (0 when none waits).",
    multiprocess_mode="livemax",
)
_webhook_disabled = Counter(
    "callhome_webhook_endpoints_disabled",
    "Webhook endpoints disabled after failing throughout the retry window.",
)

_requests = Histogram(
    "callhome_request_duration_seconds",
    "Request latency by method, route template and status.",
    ["method", "route", "status"],
    buckets=SECONDS,
)
# Children by (method, route, status): all three come from closed sets, so this stays small.
_request_children: dict[tuple[str, str, int], Histogram] = {}


# The longest a count waits in the process before /metrics on another worker shows it.
HAND_OVER_S: Final = 1.0


class _Tally:
    """What this process counted since prometheus-client last took it, in plain numbers.

    Each prometheus-client value change takes a lock and, with several workers, writes
    the value to this process's file; a ping changes half a dozen. Counting here costs an
    addition, and the values take the sums at most `HAND_OVER_S` later, before /metrics
    is read in this process, and when the process stops.
    """

    def __init__(self) -> None:
        self.counts: dict[Counter, int] = {}
        # A histogram child's observations: their sum and a count per bucket.
        self.observed: dict[Histogram, tuple[list[float], list[int]]] = {}
        self.gauges: dict[Gauge, float] = {}
        # The loop a hand-over is due on; a loop that ended before it came is forgotten.
        self._due_on: asyncio.AbstractEventLoop | None = None

    def count(self, child: Counter, amount: int = 1) -> None:
        self.counts[child] = self.counts.get(child, 0) + amount
        self._schedule()

    def observe(self, child: Histogram, bounds: tuple[float, ...], value: float) -> None:
        """`bounds`: the histogram's buckets; a value above the last falls in +Inf's."""
        observed = self.observed.get(child)
        if observed is None:
            observed = self.observed[child] = ([0.0], [0] * (len(bounds) + 1))
        observed[0][0] += value
        observed[1][bisect.bisect_left(bounds, value)] += 1
        self._schedule()

    def set(self, child: Gauge, value: float) -> None:
        self.gauges[child] = value
        self._schedule()

    def _schedule(self) -> None:
        if self._due_on is not None and not self._due_on.is_closed():
            return  # the usual case, and the cheapest test: a hand-over is already due
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # counted outside a server (a command): no later to wait for
            self.hand_over()
            return
        self._due_on = loop
        loop.call_later(HAND_OVER_S, self.hand_over)

    def hand_over(self) -> None:
        self._due_on = None
        counts, self.counts = self.counts, {}
        observed, self.observed = self.observed, {}
        gauges, self.gauges = self.gauges, {}
        for counter, amount in counts.items():
            counter.inc(amount)
        for histogram, (total, per_bucket) in observed.items():
            # prometheus-client keeps a histogram as its sum and one count per bucket
            # (cumulated when read); the version is pinned by uv.lock and
            # tests/test_metrics.py reads the page these values make.
            histogram._sum.inc(total[0])
            for bucket, count in zip(histogram._buckets, per_bucket, strict=True):
                if count:
                    bucket.inc(count)
        for gauge, value in gauges.items():
            gauge.set(value)


_tally = _Tally()


def count_ping(status: str, seat: str) -> None:
    _tally.count(_verdicts[status, seat])


def count_rate_limited(kind: str) -> None:
    _tally.count(_rate_limited_by_kind[kind])


def count_cache_lookup(hit: bool) -> None:
    _tally.count(_cache_hits if hit else _cache_misses)


def observe_batch(size: int, seconds: float, stored: bool, queued: int) -> None:
    _tally.observe(_batch_size, BATCH_SIZES, size)
    _tally.observe(_batch_commit, SECONDS, seconds)
    if not stored:
        _tally.count(_batch_failures)
    _tally.set(_queue_depth, queued)


def set_check_in_factor(factor: float) -> None:
    _tally.set(_check_in_factor, factor)


def count_reports_opened(kinds: list[str]) -> None:
    for kind in kinds:
        _tally.count(_reports_opened.labels(kind))


def count_webhook_delivery(outcome: str) -> None:
    _webhook_outcomes[outcome].inc()


def set_webhook_queue(depth: int, oldest_s: float) -> None:
    _webhook_queue_depth.set(depth)
    _webhook_oldest.set(oldest_s)


def count_webhook_endpoint_disabled() -> None:
    _webhook_disabled.inc()


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Time one request; a method outside HTTP's own is counted as OTHER (callers choose it)."""
    key = (method if method in HTTP_METHODS else "OTHER", route, status)
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = _requests.labels(*key)
    _tally.observe(child, SECONDS, seconds)


def hand_over() -> None:
    """Give prometheus-client what this process counted: before a read, and at its end."""
    _tally.hand_over()


def prepare_multiprocess_dir(data_dir: Path) -> Path:
    """Empty the directory the workers write their values to, and tell them where it is.

    Called before the workers start: values of earlier runs would otherwise be summed in.
    """
    directory = Path(os.environ.get(MULTIPROCESS_ENV) or data_dir / "metrics")
    # Owner-only like the data directory: the value files inside are made 0644.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Only the value files: the directory may be one the operator chose.
    for values in directory.glob("*.db"):
        values.unlink()
    os.environ[MULTIPROCESS_ENV] = str(directory)
    return directory


def forget_this_process() -> None:
    """At a worker's shutdown: its counts are handed over, its live gauges stop counting."""
    hand_over()
    if MULTIPROCESS_ENV in os.environ:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def serve_metrics() -> Response:
    """Prometheus text format; with several workers, the sum over all of them."""
    hand_over()
    registry = REGISTRY
    if MULTIPROCESS_ENV in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
