"""The SQL that reads or removes across every domain's tables: usage, export, erasure, expiry."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    Table,
    and_,
    delete,
    distinct,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.abuse.models import AbuseReport, ReportStatus
from app.core.audit import AuditEntry
from app.core.auth.models import StaffSession, StaffToken
from app.core.clock import utc_midnight
from app.core.database import Database, JsonDocument, dialect_insert, wait_for_horizon
from app.ingest.models import DailyUsage, pings
from app.licences.models import CustomerSession, Licence, LicenceStatus, Machine
from app.privacy.inventory import LicenceLink
from app.privacy.models import ErasureRequest, PendingRewrite

CLOSED = (ReportStatus.RESOLVED.value, ReportStatus.DISMISSED.value)

# -- usage ----------------------------------------------------------------------


class UtcDay(FunctionElement[dt.date]):
    """The UTC calendar day of a timestamp, on both stores."""

    type = Date()
    name = "utc_day"
    inherit_cache = True


@compiles(UtcDay, "postgresql")
def _utc_day_postgresql(element: UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC')::date"


@compiles(UtcDay, "sqlite")
def _utc_day_sqlite(element: UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite holds UTC timestamps as naive text, which date() reads as they are.
    return f"date({compiler.process(element.clauses, **kw)})"


class DistinctValues(FunctionElement[Any]):
    """The distinct values of a column in a group, as a JSON list."""

    type = JsonDocument
    name = "distinct_values"
    inherit_cache = True


@compiles(DistinctValues, "postgresql")
def _distinct_values_postgresql(element: DistinctValues, compiler: SQLCompiler, **kw: Any) -> str:
    return f"jsonb_agg(DISTINCT {compiler.process(element.clauses, **kw)})"


@compiles(DistinctValues, "sqlite")
def _distinct_values_sqlite(element: DistinctValues, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array(DISTINCT {compiler.process(element.clauses, **kw)})"


def _usage_query(first_day: dt.date, last_day: dt.date) -> Select[Any]:
    day = UtcDay(pings.c.received_at)
    return (
        select(
            pings.c.licence_id,
            day.label("day"),
            func.count().label("pings"),
            func.count(distinct(pings.c.machine_id)).label("machines"),
            func.count(distinct(pings.c.net_id)).label("networks"),
            func.max(pings.c.user_count).label("peak_users"),
            DistinctValues(pings.c.version).label("versions"),
        )
        .where(
            pings.c.received_at >= utc_midnight(first_day),
            pings.c.received_at < utc_midnight(last_day + dt.timedelta(days=1)),
            # Pings of a licence deleted meanwhile are usage of nothing.
            pings.c.licence_id.in_(select(Licence.id)),
        )
        .group_by(pings.c.licence_id, day)
        .order_by(day, pings.c.licence_id)
    )


async def usage_by_day(
    session: AsyncSession,
    first_day: dt.date,
    last_day: dt.date,
    *,
    licence_id: uuid.UUID | None = None,
) -> Sequence[Any]:
    """Raw pings summed up per licence and UTC day: (licence_id, day, pings, machines,
    networks, peak_users, versions), oldest day first."""
    query = _usage_query(first_day, last_day)
    if licence_id is not None:
        query = query.where(pings.c.licence_id == licence_id)
    rows: Sequence[Any] = (await session.execute(query)).all()
    return rows


# -- one licence's rows, walked from the inventory ------------------------------


def rows_about(sql_table: Table, link: LicenceLink, licence_id: uuid.UUID) -> Select[Any]:
    # Ordered by the key, or for a table without one (pings) by its columns, which
    # its (licence_id, received_at) index serves.
    order = list(sql_table.primary_key.columns) or list(sql_table.columns)
    return select(sql_table).where(link.rows_about(sql_table, licence_id)).order_by(*order)


async def read_rows_about(
    session: AsyncSession, sql_table: Table, link: LicenceLink, licence_id: uuid.UUID
) -> list[Mapping[str, Any]]:
    return list((await session.execute(rows_about(sql_table, link, licence_id))).mappings())


async def stream_rows_about(
    session: AsyncSession, sql_table: Table, link: LicenceLink, licence_id: uuid.UUID
) -> AsyncIterator[Mapping[str, Any]]:
    """The rows one by one from a server-side cursor: a licence may hold millions of pings."""
    stream = await session.stream(rows_about(sql_table, link, licence_id))
    async for mapping in stream.mappings():
        yield mapping


async def details_about(
    session: AsyncSession, sql_table: Table, link: LicenceLink, licence_id: uuid.UUID
) -> list[tuple[Any, dict[str, Any]]]:
    """(id, detail) of each audit entry about the licence."""
    entries = await session.execute(
        select(sql_table.c.id, sql_table.c.detail).where(link.rows_about(sql_table, licence_id))
    )
    return [(entry_id, detail) for entry_id, detail in entries.all()]


async def replace_detail(
    session: AsyncSession, sql_table: Table, entry_id: Any, detail: dict[str, Any]
) -> None:
    await session.execute(update(sql_table).where(sql_table.c.id == entry_id).values(detail=detail))


async def delete_rows_about(
    session: AsyncSession, sql_table: Table, link: LicenceLink, licence_id: uuid.UUID
) -> int:
    result = await session.execute(delete(sql_table).where(link.rows_about(sql_table, licence_id)))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def overwrite_deleted_rows(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "sqlite":
        # Deleted rows are overwritten with zeros, not left in free pages of the file.
        await session.execute(text("PRAGMA secure_delete = ON"))


async def checkpoint_wal(database: Database) -> None:
    """On SQLite, move the committed pages into the database file and empty the
    write-ahead log, whose older frames still hold deleted rows."""
    if database.dialect != "sqlite":
        return
    async with database.engine.connect() as connection:
        # On the driver's connection: a checkpoint cannot run inside a transaction.
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# -- hard erasure on PostgreSQL: relations to write anew ----------------------------

RELATION_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


async def ping_partitions_about(session: AsyncSession, licence_id: uuid.UUID) -> list[str]:
    """The day partitions holding the licence's pings (PostgreSQL; none on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    partition: ColumnElement[str] = literal_column("tableoid::regclass::text")
    found = await session.scalars(
        select(partition).select_from(pings).where(pings.c.licence_id == licence_id).distinct()
    )
    return sorted(found)


async def request_rewrites(
    session: AsyncSession, relations: Sequence[str], now: dt.datetime
) -> None:
    if not relations or session.get_bind().dialect.name != "postgresql":
        return
    insert = dialect_insert("postgresql")
    await session.execute(
        insert(PendingRewrite)
        .values([{"relation": relation, "requested_at": now} for relation in relations])
        .on_conflict_do_nothing(index_elements=["relation"])
    )


async def pending_rewrites(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        found = await connection.scalars(
            select(PendingRewrite.relation).order_by(PendingRewrite.relation)
        )
        return list(found)


async def rewrite_done(engine: AsyncEngine, relation: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(delete(PendingRewrite).where(PendingRewrite.relation == relation))


async def relation_file(engine: AsyncEngine, relation: str) -> int | None:
    """The relation's file number: a rewrite gives it a new one. None when it is gone."""
    async with engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT pg_relation_filenode(to_regclass(:name))"), {"name": relation}
        )
        return int(found) if found is not None else None


async def has_primary_key(engine: AsyncEngine, relation: str) -> bool:
    async with engine.connect() as connection:
        found = await connection.scalar(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_index "
                "WHERE indrelid = to_regclass(:name) AND indisprimary)"
            ),
            {"name": relation},
        )
        return bool(found)


async def vacuum_full(
    engine: AsyncEngine, relation: str, lock_timeout: str, *, horizon_wait_s: float
) -> bool:
    """Write a relation no writer uses any more (a past day's partition) anew. False when
    transactions older than the erasure were still running after `horizon_wait_s`: the
    rewrite may then have copied the erased rows along, and must be done again."""
    if not RELATION_NAME.fullmatch(relation):
        raise ValueError("not a relation name")
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        passed = await wait_for_horizon(autocommit, timeout_s=horizon_wait_s)
        await autocommit.execute(text(f"SET lock_timeout = '{lock_timeout}'"))
        try:
            await autocommit.execute(text(f"VACUUM FULL {relation}"))
        finally:
            await autocommit.execute(text("RESET lock_timeout"))
    return passed


async def ensure_repack_extension(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_repack"))


# -- expiry ---------------------------------------------------------------------


async def _delete_expired(
    database: Database, table: Table, expired: ColumnElement[bool], sqlite_batch: int
) -> int:
    """Delete the rows matching `expired`: `sqlite_batch` rows a transaction on SQLite,
    whose single writer must not be held long; in one statement on PostgreSQL."""
    if database.dialect == "postgresql":
        async with database.engine.begin() as connection:
            return int((await connection.execute(delete(table).where(expired))).rowcount)
    rowid: ColumnElement[int] = literal_column("rowid")
    batch = select(rowid).select_from(table).where(expired).limit(sqlite_batch)
    deleted = 0
    while True:
        async with database.engine.begin() as connection:
            # Expired rows are overwritten with zeros, not left in the file's free pages.
            await connection.execute(text("PRAGMA secure_delete = ON"))
            result = await connection.execute(delete(table).where(rowid.in_(batch)))
        deleted += int(result.rowcount)
        if result.rowcount < sqlite_batch:
            return deleted


async def expire_pings_before(database: Database, day: dt.date, *, sqlite_batch: int) -> int:
    """Delete the pings received before `day` began (SQLite: PostgreSQL drops partitions)."""
    expired = pings.c.received_at < utc_midnight(day)
    return await _delete_expired(database, pings, expired, sqlite_batch)


async def expire_machines_unseen_since(
    database: Database, unseen_since: dt.datetime, now: dt.datetime, *, sqlite_batch: int
) -> int:
    table = Machine.__table__
    assert isinstance(table, Table)
    # A machine activated offline never pings: it is kept while its licence file runs.
    unused = and_(
        table.c.last_seen_at < unseen_since,
        or_(table.c.offline_until.is_(None), table.c.offline_until < now),
    )
    return await _delete_expired(database, table, unused, sqlite_batch)


async def expire_rollups_before(database: Database, day: dt.date, *, sqlite_batch: int) -> int:
    table = DailyUsage.__table__
    assert isinstance(table, Table)
    return await _delete_expired(database, table, table.c.day < day, sqlite_batch)


async def licences_ended_before(
    session: AsyncSession, ended_before: dt.datetime
) -> list[uuid.UUID]:
    """Licences that expired, or were revoked (and left so), before `ended_before`."""
    ended = (Licence.expires_at < ended_before) | (
        (Licence.status == LicenceStatus.REVOKED.value) & (Licence.updated_at < ended_before)
    )
    return list(await session.scalars(select(Licence.id).where(ended).order_by(Licence.id)))


async def expire_closed_reports(
    database: Database, closed_before: dt.datetime, *, sqlite_batch: int
) -> int:
    """Delete resolved and dismissed reports closed before then; their events go with them."""
    closed = AbuseReport.status.in_(CLOSED) & (AbuseReport.closed_at < closed_before)
    return await _delete_expired(database, _table(AbuseReport), closed, sqlite_batch)


async def expire_audit_entries(
    database: Database, before: dt.datetime, *, sqlite_batch: int
) -> int:
    return await _delete_expired(database, _table(AuditEntry), AuditEntry.at < before, sqlite_batch)


async def expire_staff_tokens(
    database: Database, ended_before: dt.datetime, *, sqlite_batch: int
) -> int:
    """Delete tokens revoked or expired before then; their sessions go with them."""
    ended = (StaffToken.revoked_at < ended_before) | (StaffToken.expires_at < ended_before)
    return await _delete_expired(database, _table(StaffToken), ended, sqlite_batch)


async def expire_sessions(
    database: Database,
    model: type[StaffSession] | type[CustomerSession],
    now: dt.datetime,
    idle_since: dt.datetime,
    *,
    sqlite_batch: int,
) -> int:
    """Delete browser sessions past their lifetime or idle too long: ended, if unused."""
    ended = (model.expires_at <= now) | (model.last_used_at <= idle_since)
    return await _delete_expired(database, _table(model), ended, sqlite_batch)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# -- one maintenance run at a time ------------------------------------------------


@contextlib.asynccontextmanager
async def exclusive(engine: AsyncEngine, lock_id: int) -> AsyncIterator[bool]:
    """Yield True to the one process holding the advisory lock, False to the others."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    async with engine.connect() as connection:
        # Outside a transaction: an idle one would hold back the oldest row every vacuum
        # may remove, for the whole run, and the rewrites would copy deleted rows along.
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        held = bool(
            await autocommit.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id})
        )
        try:
            yield held
        finally:
            if held:
                await autocommit.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})


# -- erasure requests from the customer page -------------------------------------


async def add_erasure_request(
    session: AsyncSession, licence_id: uuid.UUID, now: dt.datetime
) -> bool:
    """Record the request unless one is pending already; True if it is new."""
    statement = (
        dialect_insert(session.get_bind().dialect.name)(ErasureRequest)
        .values(licence_id=licence_id, requested_at=now)
        .on_conflict_do_nothing(index_elements=["licence_id"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def erasure_request(session: AsyncSession, licence_id: uuid.UUID) -> ErasureRequest | None:
    return await session.get(ErasureRequest, licence_id)


async def pending_erasure_requests(
    session: AsyncSession, *, limit: int
) -> list[tuple[ErasureRequest, Licence]]:
    """The oldest first, with the licence each is about."""
    rows = await session.execute(
        select(ErasureRequest, Licence)
        .join(Licence, Licence.id == ErasureRequest.licence_id)
        .order_by(ErasureRequest.requested_at, ErasureRequest.licence_id)
        .limit(limit)
    )
    return [(request, licence) for request, licence in rows]
