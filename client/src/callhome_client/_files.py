"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


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
