"""Erasure: every row about a licence's use removed in one transaction, walked from the
inventory; the audit log keeps that staff acted, without the use data."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table as SqlTable
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.database import Database
from app.core.errors import NotFound
from app.licences import repository as licences
from app.licences.changes import mark_changed
from app.privacy import repository
from app.privacy.export import linked_tables
from app.privacy.inventory import AUDIT_DETAIL_USE_DATA, LicenceLink, OnErasure
from app.privacy.tables import metadata


@dataclass(frozen=True)
class Erasure:
    """What was erased, in counts per table: all the audit log is told."""

    erased: dict[str, int]
    scrubbed: dict[str, int]
    licence_deleted: bool

    def document(self) -> dict[str, Any]:
        return {
            "erased": self.erased,
            "scrubbed": self.scrubbed,
            "licence_deleted": self.licence_deleted,
        }


def scrub_use_data(detail: dict[str, Any]) -> dict[str, Any]:
    """An audit entry's detail without its use data, naming what was taken out."""
    removed = sorted(key for key in detail if key in AUDIT_DETAIL_USE_DATA)
    kept = {key: value for key, value in detail.items() if key not in AUDIT_DETAIL_USE_DATA}
    return kept | {"erased": removed} if removed else detail


async def _scrub(
    session: AsyncSession, sql_table: SqlTable, link: LicenceLink, licence_id: uuid.UUID
) -> int:
    scrubbed = 0
    for entry_id, detail in await repository.details_about(session, sql_table, link, licence_id):
        cleaned = scrub_use_data(detail)
        if cleaned is not detail:
            await repository.replace_detail(session, sql_table, entry_id, cleaned)
            scrubbed += 1
    return scrubbed


# Children before their parents, so each table's count is what it held, not what
# a cascade left of it.
def _children_first() -> list[str]:
    return [sql_table.name for sql_table in reversed(metadata.sorted_tables)]


async def erase_licence_data(
    session: AsyncSession,
    licence_id: uuid.UUID,
    *,
    delete_licence: bool,
    actor: str,
    now: dt.datetime,
) -> Erasure:
    """Remove every row about the licence's use, and the licence too if asked.

    Call `settle` once the transaction has committed."""
    await repository.overwrite_deleted_rows(session)
    # The seat check's lock: waits for a seat check on this licence to finish, without
    # holding up the batch writer, whose machine upserts need only a key-share lock.
    licence = await licences.lock_for_seat_check(session, licence_id)
    if licence is None:
        raise NotFound("No such licence")
    order = _children_first()
    # Before the rows go: which day partitions will hold their dead bytes.
    partitions = await repository.ping_partitions_about(session, licence_id)
    erased: dict[str, int] = {}
    scrubbed: dict[str, int] = {}
    if delete_licence:
        # Its /my/ sessions end with it (a cascade would do it unseen): counted, rewritten.
        erased["customer_sessions"] = await licences.delete_customer_sessions_of(
            session, licence_id
        )
    for table, link, sql_table in sorted(linked_tables(), key=lambda t: order.index(t[0].name)):
        if link.on_erasure is OnErasure.SCRUB:
            scrubbed[table.name] = await _scrub(session, sql_table, link, licence_id)
        elif link.on_erasure is OnErasure.DELETE or delete_licence:
            erased[table.name] = await repository.delete_rows_about(
                session, sql_table, link, licence_id
            )
    # On PostgreSQL the next maintenance run writes these anew (app/privacy/rewrite.py).
    touched = [name for name, count in (erased | scrubbed).items() if count and name != "pings"]
    await repository.request_rewrites(session, [*touched, *partitions], now)
    # The hot path must not answer from a cache that still lists an erased machine.
    await mark_changed(session, licence_id)
    erasure = Erasure(erased, scrubbed, licence_deleted=delete_licence)
    await audit.record(
        session,
        actor=actor,
        action="licence.erase",
        target_type="licence",
        target_id=str(licence_id),
        at=now,
        detail=erasure.document(),
    )
    return erasure


async def settle(database: Database) -> None:
    """After an erasure commits: on SQLite, move the zeroed pages into the database file
    and empty the write-ahead log, whose older frames still hold the erased rows.
    (On PostgreSQL the next maintenance run rewrites the touched relations.)"""
    await repository.checkpoint_wal(database)
