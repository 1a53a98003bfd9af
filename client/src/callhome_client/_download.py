"""Downloads checked for size and SHA-256 while they stream, resumed, and moved into place whole."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import BinaryIO, Protocol

import httpx

from ._exceptions import DownloadMismatchError, RequestRejected, ServerUnavailable

_CHUNK_BYTES = 64 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_WHOLE_SIZE = re.compile(r"/(\d+)$")


class Downloadable(Protocol):
    """What the server offers to fetch: an Update, a ChainStep of a plan, a SignatureSet."""

    @property
    def url(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...


def part_path(destination: Path, sha256: str) -> Path:
    """Where the bytes gather until they are whole: beside the destination, named by the
    file's digest so a resume never appends to another file's bytes."""
    return destination.with_name(f".{destination.name}.{sha256[:16].lower()}.part")


class _Transfer:
    """One download into its part file: hashing as it writes, refusing a byte too many."""

    def __init__(self, item: Downloadable, destination: Path) -> None:
        self.item = item
        self.destination = destination
        self.part = part_path(destination, item.sha256)
        self._hash = hashlib.sha256()
        self._written = 0
        self._file: BinaryIO | None = None

    def resume_headers(self) -> dict[str, str]:
        """Hash what an earlier attempt left, and ask for the rest (a Range request)."""
        try:
            size = self.part.stat().st_size
        except FileNotFoundError:
            return {}
        if size > self.item.size:
            self.part.unlink()
            return {}
        with self.part.open("rb") as earlier:
            for chunk in iter(lambda: earlier.read(_CHUNK_BYTES), b""):
                self._hash.update(chunk)
        self._written = size
        return {"Range": f"bytes={size}-"} if size else {}

    def begin(self, response: httpx.Response) -> None:
        """Open the part file to append (206 from where it ends) or from scratch (200)."""
        status = response.status_code
        if status == 416 and self._written == self.item.size:
            return  # an earlier attempt got every byte; the checks come at commit
        if status in (200, 206, 416) and self._total_size(response) not in (None, self.item.size):
            self.discard()
            raise DownloadMismatchError(
                f"the file to download is not the {self.item.size} bytes offered"
            )
        if status == 206 and self._resumes_at(response.headers.get("Content-Range")):
            self._file = self.part.open("ab")
            return
        if status == 200:
            self._hash = hashlib.sha256()
            self._written = 0
            self._file = self.part.open("wb")
            return
        if 400 <= status < 500 and status not in (408, 429):
            raise RequestRejected(status, "the download URL was refused (expired or not ours?)")
        raise ServerUnavailable(f"the download server answered {status}")

    @staticmethod
    def _total_size(response: httpx.Response) -> int | None:
        """The whole file's size as the server states it, when it does."""
        if response.status_code == 200:
            length = response.headers.get("Content-Length", "")
            return int(length) if length.isdigit() else None
        matched = _WHOLE_SIZE.search(response.headers.get("Content-Range", ""))
        return int(matched.group(1)) if matched else None

    def _resumes_at(self, content_range: str | None) -> bool:
        matched = _CONTENT_RANGE.fullmatch(content_range or "")
        return matched is not None and int(matched.group(1)) == self._written

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            raise DownloadMismatchError("the download sent a body where none was expected")
        if self._written + len(chunk) > self.item.size:
            self.discard()
            raise DownloadMismatchError(f"the download is longer than its {self.item.size} bytes")
        self._file.write(chunk)
        self._hash.update(chunk)
        self._written += len(chunk)

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.part.unlink(missing_ok=True)

    def commit(self) -> Path:
        """Check size and digest, then move the whole file into place at once."""
        self.close()
        if self._written != self.item.size:
            raise ServerUnavailable(
                f"the download stopped at {self._written} of {self.item.size} bytes; "
                "it resumes from there"
            )
        if self._hash.hexdigest() != self.item.sha256.lower():
            self.discard()
            raise DownloadMismatchError("the download's SHA-256 is not the one offered")
        os.replace(self.part, self.destination)
        return self.destination


def download(
    http: httpx.Client,
    item: Downloadable,
    destination: str | os.PathLike[str],
    *,
    timeout: float | httpx.Timeout,
) -> Path:
    """Fetch `item` to `destination`, resuming an earlier attempt; the destination appears
    only once every byte is there and the SHA-256 matches. A failed transfer leaves its
    part file for the next attempt; a wrong one (size or digest) is deleted."""
    transfer = _Transfer(item, Path(destination))
    try:
        with http.stream(
            "GET", item.url, headers=transfer.resume_headers(), timeout=timeout
        ) as response:
            transfer.begin(response)
            for chunk in response.iter_bytes(_CHUNK_BYTES):
                transfer.write(chunk)
    except httpx.TransportError as error:
        transfer.close()
        raise ServerUnavailable(f"the download failed ({type(error).__name__})") from error
    return transfer.commit()


async def async_download(
    http: httpx.AsyncClient,
    item: Downloadable,
    destination: str | os.PathLike[str],
    *,
    timeout: float | httpx.Timeout,
) -> Path:
    """The asyncio twin of download(). (File writes stay blocking: they are local and short.)"""
    transfer = _Transfer(item, Path(destination))
    try:
        async with http.stream(
            "GET", item.url, headers=transfer.resume_headers(), timeout=timeout
        ) as response:
            transfer.begin(response)
            async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                transfer.write(chunk)
    except httpx.TransportError as error:
        transfer.close()
        raise ServerUnavailable(f"the download failed ({type(error).__name__})") from error
    return transfer.commit()
