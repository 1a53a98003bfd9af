"""Soak: minutes of steady ping load on callhome, watching the server's resident memory.

Seeds the benchmark fleet into a fresh PostgreSQL database, starts `callhome serve`
(1 worker), warms it up, drives it with wrk at moderate concurrency for the whole
duration while sampling the server's VmRSS, and passes when the RSS at the end is
within 10 % of the RSS after the first minute and every 200 answer has its stored row.

    python loadtest/soak.py --duration 600 --connections 16
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fleet import (
    callhome_env,
    count_pings,
    make_fleet,
    parse_wrk,
    require_wrk,
    seeded_database,
    serve_command,
    start,
    stop,
    warm_up,
    write_bodies,
    wrk_command,
)

PORT = 8103
SETTLED_AFTER_S = 60
ALLOWED_DRIFT = 0.10


def resident_kib(pid: int) -> int:
    """The process's resident set, from the kernel: no dependency, no sampling overhead."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass(frozen=True)
class Sample:
    elapsed_s: float
    rss_kib: int


def sample_while(load: subprocess.Popen[str], pid: int, every_s: float) -> list[Sample]:
    """RSS samples of `pid` every `every_s` seconds until the load generator exits."""
    started = time.monotonic()
    samples = []
    while load.poll() is None:
        samples.append(Sample(time.monotonic() - started, resident_kib(pid)))
        time.sleep(every_s)
    return samples


def print_trend(samples: list[Sample]) -> None:
    """One line a minute, and the last sample."""
    shown = {int(sample.elapsed_s // 60): sample for sample in reversed(samples)}
    for sample in [*sorted(shown.values(), key=lambda s: s.elapsed_s), samples[-1]]:
        print(f"  {sample.elapsed_s:7.0f} s  RSS {sample.rss_kib / 1024:8.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--licences", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=600, help="seconds of load")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples")
    args = parser.parse_args()
    if args.duration <= SETTLED_AFTER_S:
        sys.exit(f"--duration must exceed the first {SETTLED_AFTER_S} s it is compared with")
    require_wrk()

    fleet, rows = make_fleet(args.licences)
    dsn = asyncio.run(seeded_database("callhome_soak", rows))
    work = Path(tempfile.mkdtemp(prefix="callhome-soak-"))
    bodies = write_bodies(fleet, work)
    print(f"fleet: {fleet.licences} licences, {fleet.machines} machines")

    server = start(serve_command(PORT), callhome_env(dsn, work), PORT, work / "server.log")
    try:
        # Every machine known and every licence cached before the clock starts.
        asyncio.run(warm_up(PORT, fleet.bodies))
        before = asyncio.run(count_pings(dsn))
        command = wrk_command(PORT, bodies, args.duration, args.connections)
        load = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        samples = sample_while(load, server.pid, args.sample_every)
        run = parse_wrk("callhome", load.communicate()[0])
    finally:
        # Stopped first: the pings in flight are stored and answered before the count.
        stop(server)
    stored = asyncio.run(count_pings(dsn)) - before

    print(f"{run.rps:.0f} req/s  p50 {run.p50_ms:.2f} ms  p99 {run.p99_ms:.2f} ms")
    print_trend(samples)
    sizes_mib = [sample.rss_kib / 1024 for sample in samples]
    print(f"RSS over {len(samples)} samples: {min(sizes_mib):.1f} to {max(sizes_mib):.1f} MiB")
    settled = next(sample for sample in samples if sample.elapsed_s >= SETTLED_AFTER_S)
    drift = samples[-1].rss_kib / settled.rss_kib - 1
    lost = max(0, run.acknowledged - stored)
    print(
        f"RSS after {settled.elapsed_s:.0f} s: {settled.rss_kib / 1024:.1f} MiB, "
        f"at the end: {samples[-1].rss_kib / 1024:.1f} MiB ({drift:+.1%}, allowed "
        f"±{ALLOWED_DRIFT:.0%})"
    )
    print(f"answered 200: {run.acknowledged}, stored: {stored}, lost: {lost}")
    passed = abs(drift) <= ALLOWED_DRIFT and lost == 0
    print("soak: PASSED" if passed else "soak: FAILED")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
