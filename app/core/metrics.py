"""Prometheus metrics, and the /metrics page that sums them over the worker processes.

Every label comes from a small closed set (licence status, seat, route template,
method, status code, kind): never a key, licence, machine, network or address.
Labelled children the ping path touches are bound once here, not per ping.
"""

from __future__ import annotations

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
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
)
_batch_commit = Histogram(
    "callhome_batch_commit_seconds",
    "Time to write and commit one batch of pings.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
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

_requests = Histogram(
    "callhome_request_duration_seconds",
    "Request latency by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Children by (method, route, status): all three come from closed sets, so this stays small.
_request_children: dict[tuple[str, str, int], Histogram] = {}


def count_ping(status: str, seat: str) -> None:
    _verdicts[status, seat].inc()


def count_rate_limited(kind: str) -> None:
    _rate_limited_by_kind[kind].inc()


def count_cache_lookup(hit: bool) -> None:
    (_cache_hits if hit else _cache_misses).inc()


def observe_batch(size: int, seconds: float, stored: bool, queued: int) -> None:
    _batch_size.observe(size)
    _batch_commit.observe(seconds)
    if not stored:
        _batch_failures.inc()
    _queue_depth.set(queued)


def set_check_in_factor(factor: float) -> None:
    _check_in_factor.set(factor)


def count_reports_opened(kinds: list[str]) -> None:
    for kind in kinds:
        _reports_opened.labels(kind).inc()


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Time one request; a method outside HTTP's own is counted as OTHER (callers choose it)."""
    key = (method if method in HTTP_METHODS else "OTHER", route, status)
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = _requests.labels(*key)
    child.observe(seconds)


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
    """At a worker's shutdown: its live gauges stop counting in the sum."""
    if MULTIPROCESS_ENV in os.environ:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def serve_metrics() -> Response:
    """Prometheus text format; with several workers, the sum over all of them."""
    registry = REGISTRY
    if MULTIPROCESS_ENV in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
