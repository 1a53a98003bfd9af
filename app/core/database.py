"""Engines, sessions and the column types shared by every table, for PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, MetaData, event, make_url, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util.typing import TupleAny

from app.core.errors import StoreUnavailable
from app.core.secrets import create_owner_only_file, owner_only_directory
from app.core.settings import Settings

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both stores (SQLite keeps naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


JsonDocument = JSON().with_variant(JSONB(), "postgresql")


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Own the transaction boundaries (see _on_begin) and make every
        # connection wait for the writer instead of failing at once.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock when the transaction starts: a transaction that
        # reads, then writes (the seat check) can never fail on lock upgrade.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, *, pool_size: int = 10, timeout_s: float = 5.0) -> AsyncEngine:
    # Error messages never carry bound values: a traceback that reaches a log
    # holds the statement, not the data.
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_pre_ping=False, hide_parameters=True)
        _configure_sqlite(engine, busy_timeout_ms=int(timeout_s * 1000))
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
        pool_timeout=timeout_s,
        connect_args={"timeout": timeout_s, "command_timeout": 2 * timeout_s},
    )


class Database:
    """The primary store, and the replica staff reads may use."""

    def __init__(self, settings: Settings):
        url = settings.effective_database_url
        if url.startswith("sqlite"):
            # The embedded default keeps its database and keys in the data directory:
            # nobody but the server's own user may read them.
            owner_only_directory(settings.data_dir)
            if settings.is_embedded:
                create_owner_only_file(Path(str(make_url(url).database)))
        self.engine = create_engine(url, timeout_s=settings.store_timeout_s)
        self.read_engine = (
            create_engine(settings.read_database_url, timeout_s=settings.store_timeout_s)
            if settings.read_database_url
            else self.engine
        )
        # A class of its own, so session events (cache invalidation) stay per app.
        self.session_class: type[Session] = type("CallhomeSession", (Session,), {})
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=self.session_class
        )
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self.dialect = self.engine.dialect.name

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def dialect_insert(dialect_name: str) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT; both stores spell it alike."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


async def guarded(work: Awaitable[T], settings: Settings) -> T:
    """Store trouble on the way to an answer is a 503, never a hanging request."""
    try:
        async with asyncio.timeout(settings.store_timeout_s):
            return await work
    except (TimeoutError, OSError, SQLAlchemyError) as error:
        raise StoreUnavailable(settings.retry_after_s) from error


async def execute_core(
    session: AsyncSession, statement: Executable, parameters: dict[str, Any]
) -> CursorResult[*TupleAny]:
    """Run a Core statement built once, in the session's transaction, on its connection:
    the session's own execute takes the ORM's path, which on a newcomer's seat check cost
    more than the round trip to the store."""
    connection = await session.connection()
    return await connection.execute(statement, parameters)


# -- PostgreSQL rewrites that must leave deleted rows behind ---------------------------

# Whether every transaction running when `target` was read has ended (all of the
# cluster's: a snapshot's xmin counts them all, VACUUM FULL's own included), and no
# session of this database still holds a snapshot taken before then.
_HORIZON_PASSED = text(
    "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= CAST(CAST(:target AS text) AS xid8) "
    "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity "
    "  WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "  AND backend_xmin IS NOT NULL "
    "  AND age(backend_xmin) > age(CAST(CAST(:target32 AS text) AS xid)))"
)
HORIZON_POLL_S = 0.05


async def wait_for_horizon(connection: AsyncConnection, *, timeout_s: float) -> bool:
    """Wait until rows deleted before this call are dead to every snapshot, so VACUUM FULL
    leaves them behind instead of copying them into the new files as "recently dead".

    Any transaction running anywhere in the cluster holds VACUUM FULL's own snapshot, and
    so the rows it keeps, back to its start. True once the horizon has passed; False if
    `timeout_s` ran out first (the rewrite may then keep the rows: a later run retries)."""
    target = int(
        await connection.scalar(text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"))
    )
    # pg_stat_activity shows 32-bit xids, without their epoch.
    xids = {"target": str(target), "target32": str(target % 2**32)}
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await connection.scalar(_HORIZON_PASSED, xids):
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(HORIZON_POLL_S)
    return True
