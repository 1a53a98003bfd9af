"""The store a test runs on: fresh, migrated SQLite file copies and PostgreSQL template clones."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from app.core import migrations
from app.core.database import create_engine
from app.core.settings import Settings

PG_ENV = "CALLHOME_TEST_DATABASE_URL"
TEST_PSEUDONYM_KEY = "test-pseudonym-key-0123456789abcdef0123456789"


@dataclass
class Store:
    kind: str
    settings: Settings

    @property
    def url(self) -> str:
        return self.settings.effective_database_url

    def env(self) -> dict[str, str]:
        """The environment a `callhome` process needs to use this store."""
        env = {
            "CALLHOME_DATA_DIR": str(self.settings.data_dir),
            "CALLHOME_DATABASE_URL": self.settings.database_url,
            "CALLHOME_PSEUDONYM_KEY": self.settings.pseudonym_key,
        }
        if self.settings.signing_key_file:
            env["CALLHOME_SIGNING_KEY_FILE"] = str(self.settings.signing_key_file)
        return env


def postgresql_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


@dataclass
class PostgresTemplates:
    """One migrated template per run; every test gets a clone of it. A clone takes a fifth
    of a second or more, most of a short test's time, so the next one is made in a thread
    of its own while the test that took the last one runs, and dropped there after."""

    admin_url: str
    prefix: str = f"callhome_t{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _worker: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="postgresql-clones"),
        init=False,
        repr=False,
    )
    _next: Future[str] | None = field(default=None, init=False, repr=False)

    @property
    def template(self) -> str:
        return f"{self.prefix}_template"

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(_asyncpg_dsn(self.admin_url))

    async def _run(self, statement: str) -> None:
        connection = await self._admin()
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def create_template(self) -> None:
        await _migrate(await self.create_empty(self.template))

    async def create_empty(self, name: str) -> str:
        """A database of this run with nothing in it; its URL."""
        await self._run(f'CREATE DATABASE "{name}"')
        return _with_database(self.admin_url, name)

    def _make_clone(self) -> str:
        name = f"{self.prefix}_{uuid.uuid4().hex[:10]}"
        asyncio.run(self._run(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return _with_database(self.admin_url, name)

    def clone(self) -> str:
        """A fresh clone's URL; the one after it is set going."""
        taken = self._next or self._worker.submit(self._make_clone)
        self._next = self._worker.submit(self._make_clone)
        return taken.result()

    async def drop_now(self, url: str) -> None:
        await self._run(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')

    def drop(self, url: str) -> None:
        """Dropped in the clones' thread: close() waits for it."""
        self._worker.submit(lambda: asyncio.run(self.drop_now(url)))

    def close(self) -> None:
        """Wait for the clones' thread, then drop every database of this run."""
        if self._next is not None:
            self._next.cancel()  # not made yet: no need to
        self._worker.shutdown(wait=True)
        asyncio.run(self._drop_all())

    async def _drop_all(self) -> None:
        connection = await self._admin()
        try:
            names = await connection.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", f"{self.prefix}%"
            )
            for row in names:
                await connection.execute(f'DROP DATABASE IF EXISTS "{row[0]}" WITH (FORCE)')
        finally:
            await connection.close()


def sqlite_template(directory: Path) -> Path:
    path = directory / "template.sqlite3"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


def sqlite_clone(template: Path, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, data_dir / "callhome.sqlite3")
