"""The ping's latency at a steady offered rate, beside the parse-only baseline at the same rate.

Open loop: request i is due at start + i/rate whatever the server does, and its latency
is counted from when it was due, not from when a connection was free to send it, so a
stalled server is charged for every request it kept waiting (no coordinated omission).
The maximum is measured first with wrk (closed loop, as bench.py); then baseline and
callhome run back to back at each share of it.

    python loadtest/latency.py --licences 10000 --duration 20 --shares 0.5 0.8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fleet import (
    callhome_env,
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

# Connections the generator may open; a request due while all are busy waits for one,
# and that wait is part of its latency.
MAX_CONNECTIONS = 256


@dataclass
class Result:
    name: str
    offered_rps: float
    achieved_rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    failed: int


class Connection:
    """One kept-alive HTTP/1.1 connection, a request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def requests_of(bodies: list[str], port: int) -> list[bytes]:
    return [
        (
            f"POST /v1/ping HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
        for body in bodies
    ]


async def open_loop(
    name: str, port: int, requests: list[bytes], rps: float, duration_s: float
) -> Result:
    total = int(rps * duration_s)
    idle: list[Connection] = []
    opened = 0
    freed = asyncio.Condition()
    latencies: list[float] = []
    failed = 0

    async def connection() -> Connection:
        nonlocal opened
        async with freed:
            while not idle and opened >= MAX_CONNECTIONS:
                await freed.wait()
            if idle:
                return idle.pop()
            opened += 1
        return await Connection.open(port)

    async def one(due: float, request: bytes) -> None:
        nonlocal failed, opened
        held = await connection()
        try:
            status = await held.post(request)
        except (OSError, asyncio.IncompleteReadError):
            held.close()
            async with freed:
                opened -= 1
                freed.notify()
            failed += 1
            return
        latencies.append(time.perf_counter() - due)
        if status != 200:
            failed += 1
        async with freed:
            idle.append(held)
            freed.notify()

    started = time.perf_counter()
    tasks = []
    for i in range(total):
        due = started + i / rps
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, requests[i % len(requests)])))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    for held in idle:
        held.close()
    latencies.sort()

    def percentile(share: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(share * len(latencies)))]

    return Result(name, rps, len(latencies) / elapsed, percentile(0.5), percentile(0.99),
                  percentile(0.999), failed)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--licences", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=20, help="seconds per rate")
    parser.add_argument("--max-duration", type=int, default=15, help="seconds of the wrk run")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.5, 0.8])
    args = parser.parse_args()
    require_wrk()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    fleet, rows = make_fleet(args.licences)
    dsn = asyncio.run(seeded_database("callhome_latency", rows))
    work = Path(tempfile.mkdtemp(prefix="callhome-latency-"))
    bodies_file = write_bodies(fleet, work)
    bodies = fleet.bodies[:]
    random.Random(3).shuffle(bodies)
    print(f"fleet: {fleet.licences} licences, {fleet.machines} machines")

    servers = {
        "baseline": ([sys.executable, "-m", "uvicorn", "loadtest.baseline:app", "--port", "8103",
                      "--no-access-log", "--log-level", "warning"], {}, 8103),
        "callhome": (serve_command(8104), callhome_env(dsn, work), 8104),
    }  # fmt: skip
    processes = {}
    for name, (command, env, port) in servers.items():
        processes[name] = start(command, env, port, work / f"{name}.log")
        asyncio.run(warm_up(port, fleet.bodies))
    try:
        maxima = {name: wrk(name, port, bodies_file, args.max_duration, 64).rps
                  for name, (_, _, port) in servers.items()}  # fmt: skip
        print(f"maximum (wrk, 64 connections): baseline {maxima['baseline']:.0f} req/s, "
              f"callhome {maxima['callhome']:.0f} req/s, "
              f"ratio {maxima['callhome'] / maxima['baseline']:.2f}")  # fmt: skip
        results: list[Result] = []
        for share in args.shares:
            rate = share * maxima["callhome"]
            for name, (_, _, port) in servers.items():
                result = asyncio.run(
                    open_loop(name, port, requests_of(bodies, port), rate, args.duration)
                )
                results.append(result)
    finally:
        for process in processes.values():
            stop(process)

    print("| share of callhome's max | server | offered req/s | achieved | p50 | p99 | p99.9 | "
          "failed |")  # fmt: skip
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, result in enumerate(results):
        share = args.shares[n // 2]
        print(f"| {share:.0%} | {result.name} | {result.offered_rps:.0f} | "
              f"{result.achieved_rps:.0f} | {result.p50_ms:.1f} ms | {result.p99_ms:.1f} ms | "
              f"{result.p999_ms:.1f} ms | {result.failed} |")  # fmt: skip
    for n in range(0, len(results), 2):
        baseline, callhome = results[n], results[n + 1]
        print(f"p99 callhome/baseline at {args.shares[n // 2]:.0%}: "
              f"{callhome.p99_ms / baseline.p99_ms:.2f} (goal: at most 2)")  # fmt: skip
    print(json.dumps({"maxima": maxima}))


if __name__ == "__main__":
    main()
