"""Whole answers: a response's head and body leave the process in one send.

uvicorn writes a response's head and its body with two sends. A node killed between them
(kill -9, the OOM killer) leaves the load balancer half an answer, which it cannot send
to another node: the client sees the check-in fail. Sent together, an answer is either
wholly in the kernel, which delivers it, or not sent at all, and the load balancer
retries the request elsewhere. One send per answer is also one system call less.
"""

from __future__ import annotations

import asyncio
from typing import Any


class WholeAnswers:
    """A transport that holds a write until the next one, sending both at once, or until
    the end of the event loop's turn, whichever comes first: a response's head waits for
    its body, a last write is not held past the turn it was made in."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._release)
            return
        self._held = None
        self._transport.write(held + data)

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def close(self) -> None:
        self._release()
        self._transport.close()

    def write_eof(self) -> None:
        self._release()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def _release(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
