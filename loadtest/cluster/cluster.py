"""HAProxy in front of three `callhome serve` nodes on loopback, one PostgreSQL and Redis.

`make cluster` runs `python -m loadtest.cluster.cluster` and keeps the cluster up until
Ctrl-C; the scenarios (tests/test_cluster.py) start one of their own with `Cluster`.
HAProxy runs deploy/haproxy.cfg, the configuration docs/deploy.md ships.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"
NODES = ("node1", "node2", "node3")
ADMIN_DSN = os.environ.get("CALLHOME_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CALLHOME_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/0")
START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def require_haproxy() -> str:
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if found is None:
        raise RuntimeError("haproxy is needed: `make haproxy` installs Debian's package")
    return found


async def _fresh_database(admin_dsn: str, name: str) -> str:
    """Drop and create database `name`, migrate it; its SQLAlchemy URL."""
    from app.core import migrations
    from app.core.database import create_engine

    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = admin_dsn.rpartition("/")[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{url}/{name}"
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()
    return url


async def _drop_database(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@dataclass
class Node:
    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


@dataclass
class Cluster:
    """Three nodes and HAProxy; `env_overrides` are extra CALLHOME_ settings for every node."""

    database: str = "callhome_cluster"
    admin_dsn: str = ADMIN_DSN
    env_overrides: dict[str, str] = field(default_factory=dict)
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="callhome-cluster-")))
    nodes: dict[str, Node] = field(default_factory=dict)
    haproxy: subprocess.Popen[bytes] | None = None
    lb_port: int = 0
    database_url: str = ""

    @property
    def url(self) -> str:
        """The load balancer: every scenario talks to the cluster through it."""
        return f"http://127.0.0.1:{self.lb_port}"

    @property
    def socket_path(self) -> Path:
        return self.work / "haproxy.sock"

    def env(self) -> dict[str, str]:
        return {
            "CALLHOME_DATABASE_URL": self.database_url,
            "CALLHOME_PSEUDONYM_KEY": (self.work / "pseudonym-key").read_text(),
            "CALLHOME_SIGNING_KEY_FILE": str(self.work / "signing-key.pem"),
            "CALLHOME_DATA_DIR": str(self.work),
            # HAProxy is the one proxy in front: its X-Forwarded-For is believed.
            "CALLHOME_TRUSTED_PROXIES": "127.0.0.1/32",
            "CALLHOME_RATE_LIMIT_REDIS_URL": REDIS_URL,
            **self.env_overrides,
        }

    def start(self) -> Cluster:
        from app.core.signing import new_private_key_pem

        haproxy = require_haproxy()
        self.database_url = asyncio.run(_fresh_database(self.admin_dsn, self.database))
        (self.work / "signing-key.pem").write_bytes(new_private_key_pem())
        (self.work / "pseudonym-key").write_text(secrets.token_hex(32))
        for name in NODES:
            self.nodes[name] = Node(name, free_port(), self.work / f"{name}.log")
            self.start_node(name, wait=False)
        for name in NODES:
            self.wait_node_ready(name)
        self.lb_port = free_port()
        env = {
            **os.environ,
            "CALLHOME_LB_BIND": f"127.0.0.1:{self.lb_port}",
            "CALLHOME_LB_SOCKET": str(self.socket_path),
            **{f"CALLHOME_{name.upper()}": node.address for name, node in self.nodes.items()},
        }
        with (self.work / "haproxy.log").open("wb") as log:
            # -W: master-worker, -db: stay in the foreground, so it is our child to stop.
            self.haproxy = subprocess.Popen(
                [haproxy, "-W", "-db", "-f", str(HAPROXY_CONFIG)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready(self.url)
        self.wait_until(lambda: all(self.server_states()[name] == "UP" for name in NODES))
        return self

    def start_node(self, name: str, *, wait: bool = True) -> None:
        node = self.nodes[name]
        with node.log.open("ab") as log:
            node.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(node.port)],
                env={**os.environ, **self.env()},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_node_ready(name)

    def wait_node_ready(self, name: str) -> None:
        node = self.nodes[name]

        def exited() -> None:
            if node.process is not None and node.process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.node_log(name)[-4000:]}")

        self._wait_ready(node.url, exited)

    def kill_node(self, name: str) -> None:
        """kill -9: no drain, no goodbye."""
        process = self.nodes[name].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop_node(self, name: str) -> int:
        """SIGTERM and wait for the drain; the exit code."""
        process = self.nodes[name].process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=60)

    @property
    def asyncpg_dsn(self) -> str:
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    def drop_database(self) -> None:
        asyncio.run(_drop_database(self.admin_dsn, self.database))

    def server_states(self) -> dict[str, str]:
        """What HAProxy thinks of each node now: UP, DOWN, or a transition like 'UP 1/2'."""
        return {name: row["status"] for name, row in self.server_stats().items()}

    def server_stats(self) -> dict[str, dict[str, str]]:
        """HAProxy's `show stat` row of each node (status, hrsp_2xx, ...)."""
        with socket.socket(socket.AF_UNIX) as admin:
            admin.connect(str(self.socket_path))
            admin.sendall(b"show stat\n")
            answer = b""
            while chunk := admin.recv(65536):
                answer += chunk
        rows = csv.DictReader(io.StringIO(answer.decode().lstrip("# ")))
        return {row["svname"]: row for row in rows if row["svname"] in NODES}

    def staff_token(self) -> str:
        """A staff token with every scope, made in the cluster's store."""
        from app.core import auth
        from app.core.database import Database
        from app.core.settings import Settings

        async def create() -> str:
            database = Database(Settings(**{"database_url": self.database_url}))
            try:
                async with database.sessions() as session, session.begin():
                    issued = await auth.create_token(
                        session,
                        name="cluster",
                        scopes=list(auth.Scope),
                        now=dt.datetime.now(dt.UTC),
                    )
            finally:
                await database.dispose()
            return issued.secret

        return asyncio.run(create())

    def node_log(self, name: str) -> str:
        return self.nodes[name].log.read_text(errors="replace")

    def stop(self) -> None:
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)
        for node in self.nodes.values():
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
                try:
                    node.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()

    @staticmethod
    def wait_until(condition: object, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise TimeoutError("the cluster did not reach the expected state")
            time.sleep(0.05)

    def _wait_ready(self, url: str, check: Callable[[], None] = lambda: None) -> None:
        def ready() -> bool:
            check()
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            return False

        self.wait_until(ready)


@contextlib.contextmanager
def running(**settings: str) -> Iterator[Cluster]:
    cluster = Cluster(env_overrides=settings)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="callhome_cluster")
    args = parser.parse_args()
    cluster = Cluster(database=args.database)
    try:
        cluster.start()
        print(f"load balancer  {cluster.url}   (HAProxy admin socket {cluster.socket_path})")
        for node in cluster.nodes.values():
            print(f"{node.name:14} {node.url}   log {node.log}")
        print(f"database       {cluster.database_url}")
        print(f"staff token    {cluster.staff_token()}")
        print("Ctrl-C stops it all")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    finally:
        cluster.stop()
        cluster.drop_database()


if __name__ == "__main__":
    main()
