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
import datetime as dt
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.pseudonyms import Pseudonyms  # noqa: E402
from app.core.signing import new_private_key_pem  # noqa: E402

ADMIN_DSN = os.environ.get("CALLHOME_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PSEUDONYM_KEY = "bench-pseudonym-key-0123456789abcdef0123456789"


@dataclass
class Fleet:
    bodies: list[str]
    licences: int
    machines: int


def make_fleet(licences: int, seed: int = 7) -> tuple[Fleet, list[tuple[object, ...]]]:
    """Licences with 1 to 5 machines each; a share of them used on more machines than allowed."""
    rng = random.Random(seed)
    pseudonyms = Pseudonyms(PSEUDONYM_KEY.encode())
    now = dt.datetime.now(dt.UTC)
    rows: list[tuple[object, ...]] = []
    bodies: list[str] = []
    machines = 0
    for n in range(licences):
        key = f"BENCH-{n:06d}-{secrets.token_hex(6).upper()}"
        max_machines = rng.randint(1, 5)
        over = rng.random() < 0.1
        installs = max_machines + (rng.randint(1, 3) if over else 0)
        entitlements = ["spam"] if rng.random() < 0.5 else []
        rows.append(
            (uuid.uuid4(), "mail", pseudonyms.key_hash(key), key[-4:], max_machines, 500, None,
             None, json.dumps(entitlements), "report", 7, "active", now, now)
        )  # fmt: skip
        for _ in range(installs):
            machines += 1
            body = {
                "licence_key": key,
                "product": "mail",
                "version": rng.choice(["8.1.0", "8.2.1", "8.10.0"]),
                "computer_id": secrets.token_hex(32),
                "user_count": rng.randint(1, 400),
                "nonce": secrets.token_urlsafe(24),
            }
            if entitlements:
                body["signatures"] = {"spam": rng.randint(40000, 41000)}
            bodies.append(json.dumps(body, separators=(",", ":")))
    rng.shuffle(bodies)
    return Fleet(bodies, licences, machines), rows


async def create_database(name: str, rows: list[tuple[object, ...]]) -> str:
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = ADMIN_DSN.rpartition("/")[0] + f"/{name}"
    env = {
        **os.environ,
        "CALLHOME_DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://"),
    }
    await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "app.cli", "db", "upgrade"],
        env=env, check=True, cwd=ROOT, capture_output=True,
    )  # fmt: skip
    connection = await asyncpg.connect(dsn)
    await connection.copy_records_to_table(
        "licences",
        records=rows,
        columns=["id", "product", "key_hash", "key_last4", "max_machines", "max_users",
                 "expires_at", "updates_until", "entitlements", "overage",
                 "activity_window_days", "status", "created_at", "updated_at"],
    )  # fmt: skip
    await connection.close()
    return dsn


async def count_pings(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM pings"))
    finally:
        await connection.close()


async def warm_up(port: int, bodies: list[str]) -> None:
    limits = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:

        async def one(body: str) -> None:
            async with limits:
                # A keep-alive connection the server just closed fails once;
                # a repeated ping is harmless.
                for attempt in range(3):
                    try:
                        response = await http.post("/v1/ping", content=body)
                        break
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                response.raise_for_status()

        await asyncio.gather(*(one(body) for body in bodies))


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    errors = process.stderr.read().decode() if process.stderr else ""
    raise RuntimeError(f"server on {port} did not start: {errors}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass
class Run:
    name: str
    requests: int
    non_2xx: int
    rps: float
    p50_ms: float
    p99_ms: float


def wrk(name: str, port: int, bodies: Path, duration: int, connections: int) -> Run:
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency",
         "-s", str(ROOT / "loadtest" / "pings.lua"), f"http://127.0.0.1:{port}", "--", str(bodies)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    out = result.stdout

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx_match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Run(name, requests, int(non_2xx_match.group(1)) if non_2xx_match else 0, rps,
               latency("50"), latency("99"))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--licences", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk (see loadtest/README.md)")

    fleet, rows = make_fleet(args.licences)
    dsn = asyncio.run(create_database("callhome_bench", rows))
    work = Path(tempfile.mkdtemp(prefix="callhome-bench-"))
    bodies = work / "bodies.jsonl"
    bodies.write_text("\n".join(fleet.bodies) + "\n")
    key_file = work / "signing-key.pem"
    key_file.write_bytes(new_private_key_pem())
    print(f"fleet: {fleet.licences} licences, {fleet.machines} machines")

    callhome_env = {
        "CALLHOME_DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://"),
        "CALLHOME_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "CALLHOME_SIGNING_KEY_FILE": str(key_file),
        "CALLHOME_DATA_DIR": str(work),
        "CALLHOME_LOG_LEVEL": "warning",
    }
    servers = {
        "baseline": ([sys.executable, "-m", "uvicorn", "loadtest.baseline:app", "--port", "8101",
                      "--no-access-log", "--log-level", "warning"], {}, 8101),
        "callhome": ([sys.executable, "-m", "app.cli", "serve", "--port", "8102"], callhome_env,
                     8102),
    }  # fmt: skip

    runs: list[Run] = []
    lost = 0
    for _ in range(args.rounds):
        for name in ("baseline", "callhome"):
            command, env, port = servers[name]
            process = start(command, env, port)
            # Warm-up: every machine pings once, so the run measures a fleet in
            # its steady state (known machines, cached licences), as in production.
            asyncio.run(warm_up(port, fleet.bodies))
            before = asyncio.run(count_pings(dsn))
            run = wrk(name, port, bodies, args.duration, args.connections)
            stop(process)
            if name == "callhome":
                stored = asyncio.run(count_pings(dsn)) - before
                acknowledged = run.requests - run.non_2xx
                lost += max(0, acknowledged - stored)
                print(f"  callhome: {acknowledged} answered 200, {stored} stored")
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
