"""A real `callhome serve` process on a free port, for tests where the network matters."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.core import auth


def cli_token(env: dict[str, str], name: str, scopes: Iterable[auth.Scope]) -> str:
    """A staff token made the way staff make one: with the CLI."""
    options = [part for scope in scopes for part in ("--scope", scope.value)]
    created = subprocess.run(
        [sys.executable, "-m", "app.cli", "tokens", "create", "--name", name, *options, "--json"],
        env={**os.environ, **env},
        capture_output=True,
        check=True,
    )
    token: str = json.loads(created.stdout)["token"]
    return token


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningServer:
    base_url: str
    process: subprocess.Popen[bytes]
    output_path: Path
    output: str = field(default="")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output = self.output_path.read_text(errors="replace")
        return self.output


@contextlib.contextmanager
def serve(env: dict[str, str], *, workers: int = 1) -> Iterator[RunningServer]:
    port = free_port()
    with tempfile.NamedTemporaryFile("wb", suffix=".log", delete=False) as log:
        output_path = Path(log.name)
    with output_path.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port),
             "--workers", str(workers)],
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = RunningServer(f"http://127.0.0.1:{port}", process, output_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"callhome serve exited:\n{output_path.read_text()}")
            try:
                if httpx.get(f"{server.base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"callhome serve never became ready:\n{output_path.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
        output_path.unlink(missing_ok=True)
