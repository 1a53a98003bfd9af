"""A download server on a real socket: Range requests, and connections cut on request."""

from __future__ import annotations

import re
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-")


class FileServer:
    """Serves `files` by path; `cut_after` bytes into a body, the connection drops."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: int | None = None
        self.ranges: list[str | None] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        content = self.files.get(scope["path"])
        headers = {name.decode(): value.decode() for name, value in scope["headers"]}
        self.ranges.append(headers.get("range"))
        if content is None:
            await _answer(send, 403, [], b"forbidden")
            return
        status, start = 200, 0
        matched = _RANGE.fullmatch(headers.get("range", ""))
        response_headers = [(b"accept-ranges", b"bytes")]
        if matched is not None:
            start = int(matched.group(1))
            if start >= len(content):
                await _answer(
                    send, 416, [(b"content-range", f"bytes */{len(content)}".encode())], b""
                )
                return
            status = 206
            response_headers.append(
                (b"content-range", f"bytes {start}-{len(content) - 1}/{len(content)}".encode())
            )
        body = content[start:]
        response_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        if self.cut_after is not None and self.cut_after < len(body):
            await send(
                {"type": "http.response.body", "body": body[: self.cut_after], "more_body": True}
            )
            raise ConnectionResetError("the test cuts the connection")
        await send({"type": "http.response.body", "body": body})


async def _answer(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
