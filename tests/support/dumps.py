"""Everything a store holds, as text, for tests that prove what is never kept."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from app.core.database import create_engine
from app.ingest.models import pings
from tests.support.stores import Store


async def full_dump(store: Store) -> str:
    """Every row of every table, plus the raw database files (SQLite) or pg_dump (PostgreSQL)."""
    return await _rows_as_text(store.url) + "\n" + await asyncio.to_thread(_files_or_dump, store)


def _files_or_dump(store: Store) -> str:
    parts = []
    if store.kind == "sqlite":
        for path in sorted(Path(store.settings.data_dir).glob("callhome.sqlite3*")):
            parts.append(path.read_bytes().decode("latin-1"))
    else:
        url = make_url(store.url)
        dumped = subprocess.run(
            ["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
             "-U", url.username or "postgres", "--no-owner", url.database or ""],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        parts.append(dumped.stdout)
    return "\n".join(parts)


async def count_pings(url: str) -> int:
    """Stored pings, counted through a connection of the test's own."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(pings)) or 0)
    finally:
        await engine.dispose()


async def _rows_as_text(url: str) -> str:
    engine = create_engine(url)
    lines: list[str] = []
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                query = "SELECT name FROM sqlite_master WHERE type = 'table'"
            else:
                query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            tables = list(await connection.scalars(text(query)))
            for table in tables:
                for row in await connection.execute(text(f'SELECT * FROM "{table}"')):
                    lines.append(f"{table}: {tuple(row)!r}")
    finally:
        await engine.dispose()
    return "\n".join(lines)
