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
import gc
import itertools
import json
import os
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

# Connections opened before the clock starts, each sending one request at a time. A
# request due while all are busy waits for one, and that wait is part of its latency.
CONNECTIONS = 128


@dataclass
class Result:
    name: str
    offered_rps: float
    achieved_rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    failed: int
    # Cores busy during the run: the server's processes and PostgreSQL's. At one offered
    # rate they tell how close each server ran to its own limit.
    server_cores: float = 0.0
    postgresql_cores: float = 0.0


class Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection, a request at a time. A protocol, not streams:
    the generator shares the cores with the server it measures, so it spends as little
    per request as it can."""

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self._received = bytearray()
        self._answer: asyncio.Future[int] | None = None

    @classmethod
    async def open(cls, port: int) -> Connection:
        _, connection = await asyncio.get_running_loop().create_connection(cls, "127.0.0.1", port)
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._received += data
        head_end = self._received.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self._received[:head_end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 : head.find(b"\r\n", at)]) if at >= 0 else 0
        if len(self._received) < head_end + 4 + length:
            return
        status = int(self._received[9:12])
        del self._received[: head_end + 4 + length]
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionResetError("the server closed the connection"))

    async def post(self, request: bytes) -> int:
        assert self._transport is not None, "not connected"
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._answer

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User and system time so far of the processes `pids` still running (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat.rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS_PER_S


def with_descendants(pid: int) -> list[int]:
    """`pid` and its descendants: `uvicorn --workers` serves from child processes."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += with_descendants(int(child))
    return found


def postgresql_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                pids.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pids


def measured(name: str, server_pid: int, port: int, requests: list[bytes], rps: float,
             duration_s: float) -> Result:  # fmt: skip
    """One open-loop run, with the CPU the server and PostgreSQL spent on it."""
    watched = {"server": with_descendants(server_pid), "postgresql": postgresql_pids()}
    before = {group: cpu_seconds(pids) for group, pids in watched.items()}
    started = time.perf_counter()
    result = asyncio.run(open_loop(name, port, requests, rps, duration_s))
    elapsed = time.perf_counter() - started
    result.server_cores = (cpu_seconds(watched["server"]) - before["server"]) / elapsed
    result.postgresql_cores = (cpu_seconds(watched["postgresql"]) - before["postgresql"]) / elapsed
    return result


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
    """Request i is due at start + i/rate; the next free connection takes the next request
    due, sends it no earlier than its time, and counts its latency from that time."""
    total = int(rps * duration_s)
    connections = [await Connection.open(port) for _ in range(CONNECTIONS)]
    next_request = itertools.count()
    latencies: list[float] = []
    failed = 0

    async def sender(held: Connection) -> None:
        nonlocal failed
        while (i := next(next_request)) < total:
            due = started + i / rps
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                status = await held.post(requests[i % len(requests)])
            except OSError:
                failed += 1
                held.close()
                held = await Connection.open(port)
                continue
            latencies.append(time.perf_counter() - due)
            if status != 200:
                failed += 1
        held.close()

    # The generator's own collector stays out of the run: a full pass over its bodies and
    # samples would hold its loop, and the wait be charged to the server it measures.
    gc.collect()
    gc.freeze()
    gc.disable()
    started = time.perf_counter()
    try:
        await asyncio.gather(*(sender(held) for held in connections))
    finally:
        gc.enable()
        gc.unfreeze()
    elapsed = time.perf_counter() - started
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
                requests = requests_of(bodies, port)
                pid = processes[name].pid
                results.append(measured(name, pid, port, requests, rate, args.duration))
    finally:
        for process in processes.values():
            stop(process)

    print("| share of callhome's max | server | offered req/s | achieved | p50 | p99 | p99.9 | "
          "failed | server CPU | PostgreSQL CPU |")  # fmt: skip
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, result in enumerate(results):
        share = args.shares[n // 2]
        print(f"| {share:.0%} | {result.name} | {result.offered_rps:.0f} | "
              f"{result.achieved_rps:.0f} | {result.p50_ms:.1f} ms | {result.p99_ms:.1f} ms | "
              f"{result.p999_ms:.1f} ms | {result.failed} | {result.server_cores:.2f} cores | "
              f"{result.postgresql_cores:.2f} cores |")  # fmt: skip
    for n in range(0, len(results), 2):
        baseline, callhome = results[n], results[n + 1]
        print(f"p99 callhome/baseline at {args.shares[n // 2]:.0%}: "
              f"{callhome.p99_ms / baseline.p99_ms:.2f} (goal: at most 2)")  # fmt: skip
    print(json.dumps({"maxima": maxima}))


if __name__ == "__main__":
    main()
