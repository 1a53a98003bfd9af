"""A webhook receiver on a real loopback socket that checks every signature the way the
Standard Webhooks specification defines it (written here, apart from the server's code)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


def spec_signatures(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The spec's v1 signature: HMAC-SHA256 of "id.timestamp.body" under the base64 secret
    after its `whsec_` prefix."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified_with: list[str]

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def document(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


@dataclass
class Receiver:
    """Answers each request with `status` (and `retry_after`, if set); `down()` closes the
    socket so nothing listens at all. Requests whose signature fails are kept apart."""

    secrets: list[str] = field(default_factory=list)
    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    forged: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/callhome?via=test"

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def unique(self) -> list[Received]:
        """What a receiver that dedupes by webhook-id keeps, in arrival order."""
        seen: dict[str, Received] = {}
        for request in self.received:
            seen.setdefault(request.message_id, request)
        return list(seen.values())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            self._check(headers, body)
            extra = f"Retry-After: {self.retry_after}\r\n" if self.retry_after else ""
            answer = b"no" * 10_000  # longer than the server reads
            writer.write(
                f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(answer)}\r\n{extra}"
                "Connection: close\r\n\r\n".encode()
                + answer
            )
            await writer.drain()
        writer.close()

    def _check(self, headers: dict[str, str], body: bytes) -> None:
        offered = headers.get("webhook-signature", "").split(" ")
        verified = [
            secret
            for secret in self.secrets
            if spec_signatures(
                secret, headers.get("webhook-id", ""), headers.get("webhook-timestamp", ""), body
            )
            in offered
        ]
        request = Received(headers, body, verified)
        (self.received if verified else self.forged).append(request)


@contextlib.contextmanager
def receiver_in_thread(**settings: Any) -> Iterator[Receiver]:
    """A Receiver on a loop of its own thread, for tests that block while a served
    process delivers to it (starting and stopping `callhome serve`)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    receiver = Receiver(**settings)
    asyncio.run_coroutine_threadsafe(receiver.up(), loop).result(timeout=10)
    try:
        yield receiver
    finally:
        asyncio.run_coroutine_threadsafe(receiver.down(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
