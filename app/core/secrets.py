"""Secrets kept outside the database: configured, or created once on the embedded default."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from app.core.settings import Settings


class MissingSecret(RuntimeError):
    pass


def owner_only_directory(directory: Path) -> None:
    """The directory (made if absent) and what it holds readable by its owner alone:
    itself 0700, each file in it 0600, each directory in it 0700."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    for entry in directory.iterdir():
        entry.chmod(0o700 if entry.is_dir() else 0o600)


def create_owner_only_file(path: Path) -> None:
    """Create the file empty with mode 0600 if absent. SQLite gives its WAL and
    shared-memory files the database file's mode, so they follow."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def read_or_create_secret_file(path: Path, create: bytes) -> bytes:
    """Return the file's bytes, creating it (mode 0600, atomically) when absent."""
    if path.exists():
        return path.read_bytes()
    owner_only_directory(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(create)
    try:
        # link() refuses to replace: when two processes start at once, the
        # first file wins and both read it.
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_bytes()


def pseudonym_key(settings: Settings) -> bytes:
    if settings.pseudonym_key:
        key = settings.pseudonym_key.encode()
        if len(key) < 32:
            raise MissingSecret("CALLHOME_PSEUDONYM_KEY must be at least 32 characters")
        return key
    if not settings.is_embedded:
        raise MissingSecret("CALLHOME_PSEUDONYM_KEY is required outside the embedded default")
    created = secrets.token_hex(32).encode()
    return read_or_create_secret_file(settings.data_dir / "pseudonym.key", created)
