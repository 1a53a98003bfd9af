"""CPU per ping in the app itself, in process: a figure a busy machine does not blur much.

Drives the ASGI app (no sockets, no HTTP parsing: those cost callhome and the baseline
alike) with the benchmark fleet on PostgreSQL, at production's log level with the log
written to a file, and prints the process's CPU time per ping beside the parse-only
baseline's. CPU time, unlike wall time, does not count the moments another process holds
the core; compare two figures from the same machine and the same run, as a ratio.

    python loadtest/pingcpu.py --licences 2000 --pings 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import logging.config
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop
from fleet import callhome_env, make_fleet, seeded_database

ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def scope_of(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/ping",
        "raw_path": b"/v1/ping",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def ping(app: ASGI, body: bytes) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope_of(body), receive, send)
    return status


@dataclass
class Figures:
    """CPU per ping: a machine's first (a seat claim, and for a licence's first machine
    its loading too), then known machines' in each round."""

    first_sighting_us: float
    rounds_us: list[float]


async def drive(app: ASGI, bodies: list[bytes], pings: int, concurrency: int) -> float:
    """CPU seconds this process spent on `pings` pings, `concurrency` at a time."""
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < pings:
            body = bodies[position % len(bodies)]
            position += 1
            status = await ping(app, body)
            assert status == 200, status

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - started


async def measure(app: Any, bodies: list[bytes], args: argparse.Namespace) -> Figures:
    async with app.router.lifespan_context(app):
        # Every machine once, each a newcomer: its seat is claimed in the store.
        first_sightings = await drive(app, bodies, len(bodies), args.concurrency)
        return Figures(
            first_sighting_us=1e6 * first_sightings / len(bodies),
            rounds_us=[
                1e6 * await drive(app, bodies, args.pings, args.concurrency) / args.pings
                for _ in range(args.rounds)
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--licences", type=int, default=2000)
    parser.add_argument("--pings", type=int, default=20_000, help="pings per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--log-level", default="info", help="callhome's (production: info)")
    args = parser.parse_args()

    fleet, rows = make_fleet(args.licences)
    dsn = asyncio.run(seeded_database("callhome_pingcpu", rows))
    work = Path(tempfile.mkdtemp(prefix="callhome-pingcpu-"))
    os.environ.update(callhome_env(dsn, work))
    os.environ["CALLHOME_LOG_LEVEL"] = args.log_level
    bodies = [body.encode() for body in fleet.bodies]

    from app.core.logging import logging_config
    from app.core.settings import Settings
    from app.main import create_app
    from loadtest.baseline import app as baseline

    config = logging_config(args.log_level, "json")
    # The lines go to a file, as a server's go to its journal: writing them is part of the cost.
    config["handlers"]["default"] = {
        "class": "logging.FileHandler",
        "filename": str(work / "callhome.log"),
        "formatter": "default",
    }
    logging.config.dictConfig(config)

    results = {
        "baseline": uvloop.run(measure(baseline, bodies, args)),
        "callhome": uvloop.run(measure(create_app(Settings()), bodies, args)),
    }
    for name, figures in results.items():
        rounds = ", ".join(f"{figure:.1f}" for figure in figures.rounds_us)
        print(f"{name:9} CPU per ping: median {statistics.median(figures.rounds_us):7.1f} µs, "
              f"min {min(figures.rounds_us):7.1f} µs  ({rounds})")  # fmt: skip
    medians = {name: statistics.median(figures.rounds_us) for name, figures in results.items()}
    ratio = medians["baseline"] / medians["callhome"]
    print(f"CPU ratio baseline/callhome (a throughput ratio if CPU-bound): {ratio:.2f}")
    first = results["callhome"].first_sighting_us
    print(f"callhome  CPU per first sighting (a newcomer's seat claim): {first:7.1f} µs")
    print(json.dumps(medians | {"callhome_first_sighting": first}))


if __name__ == "__main__":
    main()
