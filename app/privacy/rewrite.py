"""Hard erasure on PostgreSQL: the tables and ping partitions an erasure deleted rows from
are written anew by the next maintenance run, so the rows' bytes leave their files.

A deleted row stays in its page (and its index entries in theirs) until the space is
reused, and a plain VACUUM leaves the old bytes in the page's free space. So:
- a table with a primary key is rewritten online by pg_repack: it copies the table while
  writes go on, and locks it exclusively only for the final swap, after waiting at most
  `REPACK_WAIT_S` for that lock (and never cancelling another session); if it cannot
  get the lock, the relation stays pending for the next run;
- a day partition of `pings` (no primary key) is rewritten with VACUUM FULL once its day
  has ended and no batch can still write to it; until then it stays pending.
SQLite needs none of this: erasure deletes with `secure_delete` and empties the WAL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.settings import Settings
from app.ingest.repository import partition_name
from app.privacy import repository

logger = logging.getLogger("callhome.maintenance")

REPACK_WAIT_S = 2
PARTITION_LOCK_TIMEOUT = "2s"
# VACUUM FULL copies a deleted row along while a transaction older than its deletion
# runs anywhere in the cluster: it waits this long for them to end.
HORIZON_WAIT_S = 10.0


@dataclass(frozen=True)
class Rewrites:
    done: int = 0
    pending: int = 0


def _repack_command(engine: AsyncEngine, settings: Settings, relation: str) -> list[str]:
    url = engine.url
    command = [settings.pg_repack_command, "--no-kill-backend", f"--wait-timeout={REPACK_WAIT_S}"]
    command += ["--no-analyze", "--table", f"public.{relation}", "--dbname", str(url.database)]
    if url.host:
        command += ["--host", url.host]
    if url.port:
        command += ["--port", str(url.port)]
    if url.username:
        command += ["--username", url.username]
    return [*command, "--no-password"]


async def _repack(engine: AsyncEngine, settings: Settings, relation: str) -> None:
    environment = dict(os.environ)
    if engine.url.password:
        environment["PGPASSWORD"] = str(engine.url.password)
    try:
        process = await asyncio.create_subprocess_exec(
            *_repack_command(engine, settings, relation),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
        )
    except OSError as error:
        logger.warning("pg_repack cannot run (%s): see CALLHOME_PG_REPACK_COMMAND", error)
        return
    _, errors = await process.communicate()
    if process.returncode != 0:
        # The first line only: pg_repack's messages name tables, never row contents.
        first = errors.decode(errors="replace").strip().splitlines()[:1]
        logger.warning("pg_repack of %s failed: %s", relation, " ".join(first))


async def rewrite_erased(
    engine: AsyncEngine, settings: Settings, last_ended_day: dt.date
) -> Rewrites:
    """Rewrite each pending relation that may be; the others wait for a later run."""
    pending = await repository.pending_rewrites(engine)
    if not pending:
        return Rewrites()
    try:
        await repository.ensure_repack_extension(engine)
    except DBAPIError as error:
        # Not installed, or not ours to create: the tables wait, the other steps go on.
        logger.warning(
            "pg_repack extension unavailable (%s): %d erased relations await their rewrite",
            type(error).__name__,
            len(pending),
        )
        return Rewrites(pending=len(pending))
    writable_from = partition_name(last_ended_day + dt.timedelta(days=1))
    done = 0
    for relation in pending:
        before = await repository.relation_file(engine, relation)
        if before is None:
            # Dropped meanwhile (an expired partition): its files went with it.
            await repository.rewrite_done(engine, relation)
            done += 1
            continue
        if await repository.has_primary_key(engine, relation):
            # pg_repack copies the rows its snapshot sees: committed deletions never.
            await _repack(engine, settings, relation)
        elif relation.startswith("pings_p") and relation < writable_from:
            try:
                left_behind = await repository.vacuum_full(
                    engine, relation, PARTITION_LOCK_TIMEOUT, horizon_wait_s=HORIZON_WAIT_S
                )
            except DBAPIError as error:
                # Its lock was not free in time (a long staff read): the next run retries.
                logger.warning("rewrite of %s put off: %s", relation, type(error).__name__)
                continue
            if not left_behind:
                # An older transaction still ran: the erased rows may have come along.
                logger.warning("rewrite of %s to be repeated: older transactions ran", relation)
                continue
        else:
            continue
        # Done only if the relation really has new files: pg_repack that gave up waiting
        # for its lock still exits cleanly.
        if await repository.relation_file(engine, relation) != before:
            await repository.rewrite_done(engine, relation)
            done += 1
    return Rewrites(done=done, pending=len(pending) - done)
