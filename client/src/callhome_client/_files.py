"""Atomic file writes (a reader sees the old file or the new one, never half of one), and the
advisory lock that lets writers who share a file merge into it in turn."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# How often a writer waiting for the lock tries again.
_LOCK_POLL_S = 0.01


def write_atomically(path: Path, data: bytes, *, overwrite: bool = True) -> bool:
    """Write data to a temp file in path's folder, fsync it, then move it into place.

    With overwrite off the temp file is hard-linked into place, so that of two processes
    creating the file at once the first wins; False then means the file already existed.
    The file is readable by its owner only (it may hold the licence key).
    """
    descriptor, temp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as temp_file:
            temp_file.write(data)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        if overwrite:
            os.replace(temp_name, path)
            return True
        try:
            os.link(temp_name, path)
        except FileExistsError:
            return False
        return True
    finally:
        # after os.replace the temp file is gone; after a link or a failure it is removed here
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)


@contextlib.contextmanager
def locked_for_update(path: Path, wait_s: float) -> Iterator[bytes]:
    """Yield the bytes of the file at `path` (b"" when there is none) while holding an
    advisory lock on it, so that writers who take it before a read-merge-write go in turn.

    The lock is an flock on the file itself (created empty when missing, so there is
    something to lock). Where there is none to be had (no fcntl, as on Windows; a folder
    that cannot be written; a file system without locks; another holder for longer than
    `wait_s`, a process hung mid-write perhaps) the bytes come unlocked: the caller's merge
    still keeps what it read, and the rename still replaces the file whole.
    """
    descriptor = _locked_descriptor(path, wait_s)
    if descriptor is None:
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = b""
        yield current
        return
    try:
        with os.fdopen(descriptor, "rb", closefd=False) as locked_file:
            current = locked_file.read()
        yield current
    finally:
        os.close(descriptor)  # which releases the lock


def _locked_descriptor(path: Path, wait_s: float) -> int | None:
    """A descriptor of the file now at `path`, exclusively flocked; None when there is no
    lock to be had within `wait_s`."""
    if sys.platform == "win32":
        return None
    import fcntl

    deadline = time.monotonic() + wait_s
    while True:
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            if time.monotonic() >= deadline:
                return None
            time.sleep(_LOCK_POLL_S)
            continue
        except OSError:
            os.close(descriptor)
            return None
        if _is_file_at(descriptor, path):
            return descriptor
        # The holder replaced the file before letting go: lock the one now in its place.
        os.close(descriptor)


def _is_file_at(descriptor: int, path: Path) -> bool:
    try:
        now_at_path = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (now_at_path.st_dev, now_at_path.st_ino)
