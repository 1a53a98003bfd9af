"""What the load tools share: a fresh database, the seeded fleet, the server, wrk.

Not run by itself; `bench.py`, `soak.py` and `storebench.py` import it.
"""

from __future__ import annotations

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
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import migrations  # noqa: E402
from app.core.database import create_engine  # noqa: E402
from app.core.pseudonyms import Pseudonyms  # noqa: E402
from app.core.signing import new_private_key_pem  # noqa: E402

ADMIN_DSN = os.environ.get("CALLHOME_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PSEUDONYM_KEY = "bench-pseudonym-key-0123456789abcdef0123456789"
PINGS_SCRIPT = ROOT / "loadtest" / "pings.lua"
UNREACHABLE_LIMIT = str(10**9)
# A seed row is a licence's columns with its key's HMAC among them, which is stored apart,
# in licence_keys (copy_licences).
LICENCE_COLUMNS = [
    "id", "product", "key_hash", "key_last4", "max_machines", "max_users", "expires_at",
    "updates_until", "entitlements", "overage", "activity_window_days", "status", "created_at",
    "updated_at",
]  # fmt: skip


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def database_dsn(name: str) -> str:
    """The DSN of database `name` on the server ADMIN_DSN names."""
    return ADMIN_DSN.rpartition("/")[0] + f"/{name}"


async def fresh_database(name: str) -> str:
    """Drop and create database `name`, migrate it with the app's own migrations; its DSN."""
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = database_dsn(name)
    engine = create_engine(sqlalchemy_url(dsn))
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()
    return dsn


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


async def copy_licences(dsn: str, rows: list[tuple[object, ...]]) -> None:
    """Seed rows (LICENCE_COLUMNS) into licences, and their keys into licence_keys."""
    key_at, id_at = LICENCE_COLUMNS.index("key_hash"), LICENCE_COLUMNS.index("id")
    created_at = LICENCE_COLUMNS.index("created_at")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "licences",
            records=[row[:key_at] + row[key_at + 1 :] for row in rows],
            columns=[column for column in LICENCE_COLUMNS if column != "key_hash"],
        )
        await connection.copy_records_to_table(
            "licence_keys",
            records=[(row[key_at], row[id_at], row[created_at]) for row in rows],
            columns=["key_hash", "licence_id", "created_at"],
        )
    finally:
        await connection.close()


async def seeded_database(name: str, rows: list[tuple[object, ...]]) -> str:
    """A fresh database holding the fleet's licences; its DSN."""
    dsn = await fresh_database(name)
    await copy_licences(dsn, rows)
    return dsn


def write_bodies(fleet: Fleet, work: Path) -> Path:
    """The fleet's ping bodies, one a line, as pings.lua reads them."""
    bodies = work / "bodies.jsonl"
    bodies.write_text("\n".join(fleet.bodies) + "\n")
    return bodies


def callhome_env(dsn: str, work: Path) -> dict[str, str]:
    """The environment of `callhome serve` on `dsn`, with a signing key made in `work`."""
    key_file = work / "signing-key.pem"
    key_file.write_bytes(new_private_key_pem())
    return {
        "CALLHOME_DATABASE_URL": sqlalchemy_url(dsn),
        "CALLHOME_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "CALLHOME_SIGNING_KEY_FILE": str(key_file),
        "CALLHOME_DATA_DIR": str(work),
        # Production's level: the access log's cost is part of a ping's.
        "CALLHOME_LOG_LEVEL": "info",
        # The fleet calls thousands of times faster than a real one, all from one
        # address: the limits stay on, since counting is part of a ping's cost,
        # but out of reach.
        **{f"CALLHOME_RATE_LIMIT_{name}_PER_HOUR": UNREACHABLE_LIMIT
           for name in ("LICENCE", "MACHINE", "NETWORK")},
    }  # fmt: skip


def serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]


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
                        response = await http.post(
                            "/v1/ping",
                            content=body,
                            headers={"Content-Type": "application/json"},
                        )
                        break
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                response.raise_for_status()

        await asyncio.gather(*(one(body) for body in bodies))


def start(command: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start a server and wait until it answers; its stderr goes to `log`, which a pipe
    nobody reads during a long run could not take without stalling the server."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server on {port} did not start: {log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk (see loadtest/README.md)")


@dataclass
class Run:
    name: str
    requests: int
    non_2xx: int
    rps: float
    p50_ms: float
    p99_ms: float

    @property
    def acknowledged(self) -> int:
        return self.requests - self.non_2xx


def wrk_command(port: int, bodies: Path, duration_s: int, connections: int) -> list[str]:
    return [
        "wrk", "-t2", f"-c{connections}", f"-d{duration_s}s", "--latency",
        "-s", str(PINGS_SCRIPT), f"http://127.0.0.1:{port}", "--", str(bodies),
    ]  # fmt: skip


def parse_wrk(name: str, out: str) -> Run:
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


def wrk(name: str, port: int, bodies: Path, duration_s: int, connections: int) -> Run:
    command = wrk_command(port, bodies, duration_s, connections)
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return parse_wrk(name, result.stdout)
