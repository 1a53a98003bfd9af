"""The downloader: size and SHA-256 checked while streaming, resumed, moved into place whole."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from callhome_client import ChainStep, DownloadMismatchError, RequestRejected, ServerUnavailable
from client_support import ClientFactory
from file_server import FileServer
from server_thread import serve_in_thread

CONTENT = bytes(range(256)) * 1024  # 256 KiB: several chunks


@pytest.fixture(scope="module")
def served_files() -> Iterator[tuple[FileServer, str]]:
    files = FileServer()
    with serve_in_thread(files) as base_url:
        yield files, base_url


@pytest.fixture
def files(served_files: tuple[FileServer, str]) -> FileServer:
    server = served_files[0]
    server.files = {"/spam-41234": CONTENT}
    server.cut_after = None
    server.ranges.clear()
    return server


def offer(base_url: str, *, sha256: str | None = None, size: int = len(CONTENT)) -> ChainStep:
    digest = sha256 or hashlib.sha256(CONTENT).hexdigest()
    return ChainStep(41233, 41234, f"{base_url}/spam-41234", digest, size)


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_download_lands_whole_and_leaves_nothing_else(
    make_client: ClientFactory,
    files: FileServer,
    served_files: tuple[FileServer, str],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "sets"
    folder.mkdir()

    path = make_client().download(offer(served_files[1]), folder / "spam.delta")

    assert path.read_bytes() == CONTENT
    assert leftovers(folder) == ["spam.delta"]


def test_a_cut_download_resumes_where_it_stopped(
    make_client: ClientFactory,
    files: FileServer,
    served_files: tuple[FileServer, str],
    tmp_path: Path,
) -> None:
    client = make_client()
    files.cut_after = 100_000
    with pytest.raises(ServerUnavailable):
        client.download(offer(served_files[1]), tmp_path / "spam.delta")
    assert not (tmp_path / "spam.delta").exists(), "no half-written file in place"

    files.cut_after = None
    path = client.download(offer(served_files[1]), tmp_path / "spam.delta")

    assert path.read_bytes() == CONTENT
    resumed_from = files.ranges[-1]
    assert resumed_from is not None and resumed_from.startswith("bytes=")
    assert int(resumed_from.removeprefix("bytes=").rstrip("-")) > 0
    assert leftovers(tmp_path) == ["spam.delta"]


@pytest.mark.parametrize(
    "wrong",
    [{"sha256": "0" * 64}, {"size": len(CONTENT) - 1}, {"size": len(CONTENT) + 1}],
    ids=["other digest", "longer than offered", "shorter than offered"],
)
def test_bytes_other_than_offered_are_thrown_away(
    make_client: ClientFactory,
    files: FileServer,
    served_files: tuple[FileServer, str],
    tmp_path: Path,
    wrong: dict[str, object],
) -> None:
    with pytest.raises(DownloadMismatchError):
        make_client().download(offer(served_files[1], **wrong), tmp_path / "spam.delta")  # type: ignore[arg-type]

    assert leftovers(tmp_path) == [], "neither the file nor its partial download is kept"


def test_a_refused_url_raises_request_rejected(
    make_client: ClientFactory,
    files: FileServer,
    served_files: tuple[FileServer, str],
    tmp_path: Path,
) -> None:
    files.files = {}

    with pytest.raises(RequestRejected):
        make_client().download(offer(served_files[1]), tmp_path / "spam.delta")

    assert leftovers(tmp_path) == []
