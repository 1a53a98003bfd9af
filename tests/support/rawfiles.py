"""The store's bytes as an auditor with disk access reads them: files, not queries."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import text

from tests.support import app_parts
from tests.support.stores import Store


async def postgresql_relation_files(app: FastAPI, relations: list[str]) -> list[Path]:
    """The files of these tables and indexes (and their TOAST), after a checkpoint has
    written every dirty page out, as a copy of the data directory would hold them."""
    async with app_parts.database(app).engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("CHECKPOINT"))
        data_directory = Path(str(await autocommit.scalar(text("SHOW data_directory"))))
        paths: list[Path] = []
        for relation in relations:
            rows = await autocommit.execute(
                text(
                    "SELECT pg_relation_filepath(c.oid) FROM pg_class c "
                    "WHERE c.oid = to_regclass(:name) OR c.oid = ("
                    "  SELECT reltoastrelid FROM pg_class WHERE oid = to_regclass(:name)) "
                    "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN ("
                    "  to_regclass(:name), "
                    "  (SELECT reltoastrelid FROM pg_class WHERE oid = to_regclass(:name))))"
                ),
                {"name": relation},
            )
            paths += [data_directory / path for (path,) in rows if path]
    return paths


def _segments(path: Path) -> list[Path]:
    """A relation's file and its 1 GB continuation segments (path.1, path.2, ...)."""
    return [path, *sorted(path.parent.glob(f"{path.name}.[0-9]*"))]


async def store_bytes(store: Store, app: FastAPI, relations: list[str]) -> bytes:
    """SQLite: the database, its WAL and shared-memory files. PostgreSQL: the files of
    `relations`, their indexes and TOAST."""
    if store.kind == "sqlite":
        files = sorted(store.settings.data_dir.glob("callhome.sqlite3*"))
    else:
        files = [
            segment
            for path in await postgresql_relation_files(app, relations)
            for segment in _segments(path)
        ]
    assert files, "the store has no files to read"
    return b"".join(path.read_bytes() for path in files if path.exists())
