"""Throughput of POST /v1/ping on PostgreSQL beside a parse-only FastAPI endpoint.

One command, one machine: seeds a fleet into a fresh PostgreSQL database, starts
callhome (1 worker) and the baseline (1 worker) in turn, drives each with wrk
over the same varied bodies, alternating, and prints throughput, p50/p99, the
ratio, and whether every 200 has its stored row.

    python loadtest/bench.py --licences 10000 --duration 20 --connections 64
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import httpx
from fleet import (
    Run,
    callhome_env,
    count_pings,
    make_fleet,
    require_wrk,
    seeded_database,
    serve_command,
    start,
    stop,
    warm_up,
    write_bodies,
    wrk,
)
from prometheus_client.parser import text_string_to_metric_families


def batch_digest(port: int) -> str:
    """The group commit as the server saw it: mean batch size, mean and slowest commits."""
    families = {
        family.name: family
        for family in text_string_to_metric_families(
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        )
    }
    values = {
        sample.name + sample.labels.get("le", ""): sample.value
        for name in ("callhome_batch_size", "callhome_batch_commit_seconds")
        for sample in families[name].samples
    }
    batches = values["callhome_batch_size_count"]
    slow = batches - values["callhome_batch_commit_seconds_bucket0.05"]
    return (
        f"{batches:.0f} batches of {values['callhome_batch_size_sum'] / batches:.1f} pings, "
        f"commit mean {1000 * values['callhome_batch_commit_seconds_sum'] / batches:.1f} ms, "
        f"{slow:.0f} over 50 ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--licences", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    args = parser.parse_args()
    require_wrk()

    fleet, rows = make_fleet(args.licences)
    dsn = asyncio.run(seeded_database("callhome_bench", rows))
    work = Path(tempfile.mkdtemp(prefix="callhome-bench-"))
    bodies = write_bodies(fleet, work)
    print(f"fleet: {fleet.licences} licences, {fleet.machines} machines")

    servers = {
        "baseline": ([sys.executable, "-m", "uvicorn", "loadtest.baseline:app", "--port", "8101",
                      "--no-access-log", "--log-level", "warning"], {}, 8101),
        "callhome": (serve_command(8102), callhome_env(dsn, work), 8102),
    }  # fmt: skip

    runs: list[Run] = []
    lost = 0
    for _ in range(args.rounds):
        for name in ("baseline", "callhome"):
            command, env, port = servers[name]
            process = start(command, env, port, work / f"{name}.log")
            # Warm-up: every machine pings once, so the run measures a fleet in
            # its steady state (known machines, cached licences), as in production.
            asyncio.run(warm_up(port, fleet.bodies))
            before = asyncio.run(count_pings(dsn))
            run = wrk(name, port, bodies, args.duration, args.connections)
            digest = batch_digest(port) if name == "callhome" else ""
            stop(process)
            if name == "callhome":
                stored = asyncio.run(count_pings(dsn)) - before
                lost += max(0, run.acknowledged - stored)
                print(f"  callhome: {run.acknowledged} answered 200, {stored} stored; {digest}")
            runs.append(run)
            print(f"{name:9} {run.rps:9.0f} req/s  p50 {run.p50_ms:6.2f} ms  "
                  f"p99 {run.p99_ms:6.2f} ms  non-2xx {run.non_2xx}")  # fmt: skip

    def mean(name: str) -> float:
        chosen = [run.rps for run in runs if run.name == name]
        return sum(chosen) / len(chosen)

    print(f"ratio callhome/baseline: {mean('callhome') / mean('baseline'):.2f}")
    print(f"pings lost (200 without a stored row): {lost}")


if __name__ == "__main__":
    main()
