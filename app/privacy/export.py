"""Everything held about one licence, as one JSON document written while it is read.

The rows are found by walking the inventory: a table declared as being about a
licence shows up in the export by that declaration alone.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import IO, Any

import orjson
from sqlalchemy import Table as SqlTable
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.licences.service import get_licence
from app.privacy import repository
from app.privacy.inventory import INVENTORY, LicenceLink, Nesting, Table
from app.privacy.tables import metadata

LICENCE_TABLE = "licences"
# Beyond this an export spools to a temporary file on disk.
SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
# Child rows by the key of their parent row.
ByParent = dict[tuple[Any, ...], list[dict[str, Any]]]


def linked_tables() -> Iterator[tuple[Table, LicenceLink, SqlTable]]:
    """Each inventory table that holds rows about a licence, with its link and its table."""
    for table in INVENTORY:
        if table.licence is not None:
            yield table, table.licence, metadata.tables[table.name]


def _uuid_as_text(value: object) -> str:
    # The PostgreSQL driver's UUIDs are a subclass, which orjson does not take as one.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(type(value).__name__)


def _json(value: Any) -> bytes:
    return orjson.dumps(value, default=_uuid_as_text, option=orjson.OPT_UTC_Z)


def _record(mapping: Mapping[str, Any]) -> dict[str, Any]:
    # Column names come as a str subclass, which orjson refuses as keys.
    return {str(name): value for name, value in mapping.items()}


def _parent_key(row: dict[str, Any], nesting: Nesting) -> tuple[Any, ...]:
    return tuple(row[parent_column] for parent_column in nesting.join.values())


def _child_key(row: dict[str, Any], nesting: Nesting) -> tuple[Any, ...]:
    return tuple(row[child_column] for child_column in nesting.join)


async def _nested_children(
    session: AsyncSession, licence_id: uuid.UUID
) -> dict[str, list[tuple[Nesting, ByParent]]]:
    """Child rows (a report's events) by parent table: few per licence, so read first."""
    children: dict[str, list[tuple[Nesting, ByParent]]] = defaultdict(list)
    for _, link, sql_table in linked_tables():
        if link.nested_in is None:
            continue
        by_parent: ByParent = defaultdict(list)
        for row in await repository.read_rows_about(session, sql_table, link, licence_id):
            child = _record(row)
            by_parent[_child_key(child, link.nested_in)].append(child)
        children[link.nested_in.parent].append((link.nested_in, by_parent))
    return children


async def write_export(
    session: AsyncSession, licence_id: uuid.UUID, out: IO[bytes]
) -> dict[str, int]:
    """Write the licence's document to `out`; return how many records of each kind it holds.

    One top-level key per kind of record: `licence` (an object), then a list for each
    other kind (`machines`, `pings`, `rollups`, `reports` with their `events`, ...).
    """
    await get_licence(session, licence_id)
    children = await _nested_children(session, licence_id)
    counts: dict[str, int] = {}
    out.write(b"{")
    for table, link, sql_table in linked_tables():
        if link.nested_in is not None:
            continue
        if counts:
            out.write(b",")
        out.write(_json(link.export_key) + b":")
        single = table.name == LICENCE_TABLE
        if not single:
            out.write(b"[")
        counts[link.export_key] = 0
        async for mapping in repository.stream_rows_about(session, sql_table, link, licence_id):
            row = _record(mapping)
            for nesting, by_parent in children.get(table.name, []):
                row[nesting.key] = by_parent.get(_parent_key(row, nesting), [])
            out.write((b"," if counts[link.export_key] else b"") + _json(row))
            counts[link.export_key] += 1
        if not single:
            out.write(b"]")
    out.write(b"}")
    return counts


async def export_licence(
    session: AsyncSession, licence_id: uuid.UUID, *, actor: str, now: dt.datetime
) -> IO[bytes]:
    """The licence's document in a spooled file, rewound, and an audit entry that staff
    exported it. The file lets the transaction end before a slow reader has read it all;
    the caller closes it."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
    try:
        counts = await write_export(session, licence_id, spool)
        await audit.record(
            session,
            actor=actor,
            action="licence.export",
            target_type="licence",
            target_id=str(licence_id),
            at=now,
            detail={"exported": counts},
        )
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool
