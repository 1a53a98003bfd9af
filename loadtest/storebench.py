"""Staff reads at fleet scale: the abuse-report list and the licence detail on PostgreSQL.

Loads a fresh database with COPY (100,000 licences, 1,000,000 machines, 10,000,000
pings over the retention window, thousands of abuse reports), ANALYZEs it, then
times the staff services the API calls, and prints each statement's plan,
flagging sequential scans of big tables.

    python loadtest/storebench.py                # full size
    python loadtest/storebench.py --scale 0.01   # a quick run at 1/100
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import random
import re
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from fleet import copy_licences, database_dsn, fresh_database, sqlalchemy_url
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.abuse import service as reports
from app.abuse.findings import DETECTOR_ACTOR, MAX_EVIDENCE_MACHINES, severity
from app.abuse.models import UNDER_REVIEW, ReportKind, ReportStatus
from app.abuse.schemas import ReportSort
from app.core.database import Database, create_engine
from app.core.settings import Settings
from app.ingest.repository import DAYS_AHEAD, ensure_ping_partitions, partition_name
from app.licences import service as licences
from app.licences.service import short_machine_id
from app.privacy.erasure import erase_licence_data
from app.privacy.rewrite import rewrite_erased

DATABASE = "callhome_storebench"
GOAL_MS = 50.0
# A relation with more rows than this is too big to read whole for one page.
BIG_TABLE_ROWS = 10_000
SITE_LICENCE_SHARE = 0.02
RETENTION_DAYS: int = Settings.model_fields["ping_retention_days"].default
PRODUCTS = (("mail", 0.7), ("gateway", 0.2), ("archive", 0.1))
VERSIONS = ("8.1.0", "8.2.1", "8.10.0", "8.11.2")
KINDS = (
    (ReportKind.MACHINES_OVER_LIMIT, 0.45),
    (ReportKind.USERS_OVER_LIMIT, 0.2),
    (ReportKind.MACHINE_CHURN, 0.2),
    (ReportKind.NETWORK_SPREAD, 0.15),
)
STATUSES = (
    (ReportStatus.OPEN, 0.25),
    (ReportStatus.ACKNOWLEDGED, 0.1),
    (ReportStatus.RESOLVED, 0.45),
    (ReportStatus.DISMISSED, 0.2),
)
MACHINE_COLUMNS = [
    "licence_id", "machine_id", "first_seen_at", "last_seen_at", "last_version",
    "last_user_count", "seat", "retired_at",
]  # fmt: skip
# The time last: a ping row is its machine's template plus the moment it came.
PING_COLUMNS = [
    "licence_id", "machine_id", "net_id", "product", "version", "channel", "user_count",
    "signatures", "status", "seat", "received_at",
]  # fmt: skip
REPORT_COLUMNS = [
    "licence_id", "id", "kind", "status", "severity", "figure", "peak_figure", "allowed",
    "first_seen_at", "last_seen_at", "opened_at", "updated_at", "closed_at", "evidence",
]  # fmt: skip
EVENT_COLUMNS = [
    "licence_id", "report_id", "seq", "at", "actor", "from_status", "to_status", "note",
]  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    licences: int
    machines: int
    pings: int
    reports: int

    def scaled(self, factor: float) -> Sizes:
        return Sizes(
            licences=max(1, round(self.licences * factor)),
            machines=max(1, round(self.machines * factor)),
            pings=max(1, round(self.pings * factor)),
            reports=max(10, round(self.reports * factor)),
        )


FULL_SIZE = Sizes(licences=100_000, machines=1_000_000, pings=10_000_000, reports=10_000)


def weighted(rng: random.Random, choices: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([value for value, _ in choices], [weight for _, weight in choices])[0]


@dataclass
class Fleet:
    """The generated store in memory: one entry per licence (or machine) in each list."""

    now: dt.datetime
    licence_ids: list[uuid.UUID] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    max_machines: list[int] = field(default_factory=list)
    max_users: list[int | None] = field(default_factory=list)
    signatures: list[str | None] = field(default_factory=list)
    machines_of: list[list[int]] = field(default_factory=list)
    machine_rows: list[tuple[Any, ...]] = field(default_factory=list)

    def licence_with(self, machine_count: int) -> int:
        return next(n for n, owned in enumerate(self.machines_of) if len(owned) == machine_count)


def machine_counts(rng: random.Random, sizes: Sizes) -> list[int]:
    """Machines per licence, heavy-tailed: most licences run a few, some thousands, and one
    site licence runs SITE_LICENCE_SHARE of the fleet."""
    site = max(1, int(sizes.machines * SITE_LICENCE_SHARE))
    others = sizes.licences - 1
    weights = [rng.paretovariate(1.5) for _ in range(others)]
    spare = sizes.machines - site - others
    total = sum(weights)
    counts = [1 + int(spare * weight / total) for weight in weights]
    for licence in rng.choices(range(others), weights, k=spare + others - sum(counts)):
        counts[licence] += 1
    return [site, *counts]


def make_licences(rng: random.Random, sizes: Sizes, fleet: Fleet) -> list[tuple[Any, ...]]:
    rows = []
    for count in machine_counts(rng, sizes):
        licence_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        product = weighted(rng, PRODUCTS)
        # Most licences allow about what they run; a share run more than they allow.
        max_machines = max(1, round(count * rng.uniform(0.7, 1.3)))
        max_users = rng.choice((None, 50, 250, 1000))
        entitled = rng.random() < 0.5
        created_at = fleet.now - dt.timedelta(days=rng.uniform(30, 6 * 365))
        status = weighted(rng, (("active", 0.95), ("suspended", 0.03), ("revoked", 0.02)))
        rows.append(
            (licence_id, product, f"{rng.getrandbits(256):064x}", f"{rng.getrandbits(16):04X}",
             max_machines, max_users, fleet.now + dt.timedelta(days=rng.uniform(-30, 700)),
             (fleet.now + dt.timedelta(days=rng.uniform(-60, 365))).date(),
             json.dumps(["spam"] if entitled else []), rng.choice(("report", "report", "deny")),
             7, status, created_at, created_at)
        )  # fmt: skip
        fleet.licence_ids.append(licence_id)
        fleet.products.append(product)
        fleet.max_machines.append(max_machines)
        fleet.max_users.append(max_users)
        fleet.signatures.append(
            json.dumps({"spam": rng.randint(40000, 41000)}) if entitled else None
        )
        fleet.machines_of.append([0] * count)
    return rows


def make_machines(rng: random.Random, fleet: Fleet) -> None:
    """Most machines seen within the activity window, the rest fallen silent; a few retired."""
    now = fleet.now
    for licence, owned in enumerate(fleet.machines_of):
        for slot in range(len(owned)):
            first_seen_at = now - dt.timedelta(days=rng.uniform(0, 400))
            if rng.random() < 0.85:
                last_seen_at = now - dt.timedelta(hours=rng.uniform(0, 7 * 24))
            else:
                last_seen_at = first_seen_at + (now - first_seen_at) * rng.random()
            last_seen_at = max(first_seen_at, last_seen_at)
            retired_at = last_seen_at if rng.random() < 0.02 else None
            seat = "denied" if rng.random() < 0.03 else "granted"
            owned[slot] = len(fleet.machine_rows)
            fleet.machine_rows.append(
                (fleet.licence_ids[licence], f"{rng.getrandbits(128):032x}", first_seen_at,
                 last_seen_at, rng.choice(VERSIONS), rng.randint(1, 400), seat, retired_at)
            )  # fmt: skip


def machines_in_arrival_order(fleet: Fleet) -> list[tuple[Any, ...]]:
    # Machines arrive over time, so one licence's rows lie scattered over the table.
    return sorted(fleet.machine_rows, key=lambda row: row[2])


def ping_templates(rng: random.Random, fleet: Fleet) -> list[tuple[Any, ...]]:
    """Per machine, every ping column but the time, in PING_COLUMNS order."""
    templates: list[tuple[Any, ...]] = [()] * len(fleet.machine_rows)
    for licence, owned in enumerate(fleet.machines_of):
        product, signatures = fleet.products[licence], fleet.signatures[licence]
        for machine in owned:
            licence_id, machine_id, _, _, version, user_count, seat, _ = fleet.machine_rows[machine]
            net_id = f"{rng.getrandbits(64):016x}"
            templates[machine] = (licence_id, machine_id, net_id, product, version, "stable",
                                  user_count, signatures, "valid", seat)  # fmt: skip
    return templates


def ping_rows(
    rng: random.Random, templates: list[tuple[Any, ...]], day: dt.date, now: dt.datetime, count: int
) -> list[tuple[Any, ...]]:
    """`count` pings of random machines, in arrival order over one UTC day (until `now`)."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    seconds = min(86_400, max(1, int((now - start).total_seconds())))
    chosen = rng.choices(templates, k=count)
    at = sorted(int(rng.random() * seconds) for _ in range(count))
    # To the second: one datetime serves every ping of that second.
    moments = {second: start + dt.timedelta(seconds=second) for second in set(at)}
    return [(*template, moments[second]) for template, second in zip(chosen, at, strict=True)]


def evidence(fleet: Fleet, licence: int, kind: ReportKind, rng: random.Random) -> dict[str, Any]:
    """Evidence in the shape app/abuse/findings.py writes: facts and the latest machines."""
    rows = [fleet.machine_rows[machine] for machine in fleet.machines_of[licence]]
    latest = sorted(rows, key=lambda row: row[3], reverse=True)[:MAX_EVIDENCE_MACHINES]
    facts_of: dict[ReportKind, dict[str, Any]] = {
        ReportKind.USERS_OVER_LIMIT: {"peak_user_count": rng.randint(300, 3000),
                                     "pings_over_limit": rng.randint(1, 500)},
        ReportKind.MACHINE_CHURN: {"window_days": 30},
        ReportKind.NETWORK_SPREAD: {"day": (fleet.now - dt.timedelta(days=1)).date().isoformat()},
    }  # fmt: skip
    facts = facts_of.get(kind, {})
    machines = [
        {"machine": short_machine_id(machine_id), "first_seen_at": first_seen_at.isoformat(),
         "last_seen_at": last_seen_at.isoformat(), "version": version, "user_count": user_count,
         "seat": seat}
        for _, machine_id, first_seen_at, last_seen_at, version, user_count, seat, _ in latest
    ]  # fmt: skip
    return {**facts, "machines": machines}


def allowed_for(fleet: Fleet, licence: int, kind: ReportKind) -> int:
    max_machines = fleet.max_machines[licence]
    return {
        ReportKind.MACHINES_OVER_LIMIT: max_machines,
        ReportKind.USERS_OVER_LIMIT: fleet.max_users[licence] or 500,
        ReportKind.MACHINE_CHURN: max(10, 3 * max_machines),
        ReportKind.NETWORK_SPREAD: max(4, 2 * max_machines),
    }[kind]


def make_reports(
    rng: random.Random, fleet: Fleet, count: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Reports of every kind and status, one under review per licence and kind, with history."""
    reports_rows: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    under_review: set[tuple[int, ReportKind]] = set()
    while len(reports_rows) < count:
        licence = rng.randrange(len(fleet.licence_ids))
        kind: ReportKind = weighted(rng, KINDS)
        status: ReportStatus = weighted(rng, STATUSES)
        reviewing = status.value in UNDER_REVIEW
        if reviewing:
            if (licence, kind) in under_review:
                continue
            under_review.add((licence, kind))
        allowed = allowed_for(fleet, licence, kind)
        peak_figure = allowed + max(1, round(allowed * rng.uniform(0.05, 2.5)))
        age = rng.uniform(0, 30) if reviewing else rng.uniform(5, 700)
        opened_at = fleet.now - dt.timedelta(days=age)
        last_seen_at = opened_at + dt.timedelta(days=rng.uniform(0, min(age, 10)))
        closed_at = None if reviewing else last_seen_at + dt.timedelta(days=1)
        report_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        licence_id = fleet.licence_ids[licence]
        reports_rows.append(
            (licence_id, report_id, kind.value, status.value, severity(peak_figure, allowed),
             rng.randint(allowed + 1, peak_figure), peak_figure, allowed,
             opened_at - dt.timedelta(hours=6), last_seen_at, opened_at, closed_at or last_seen_at,
             closed_at, json.dumps(evidence(fleet, licence, kind, rng)))
        )  # fmt: skip
        events.append(
            (licence_id, report_id, 1, opened_at, DETECTOR_ACTOR, None, "open",
             f"{kind.value}: {peak_figure} where {allowed} allowed")
        )  # fmt: skip
        if status is not ReportStatus.OPEN:
            events.append(
                (licence_id, report_id, 2, closed_at or last_seen_at, "support", "open",
                 status.value, "Looked into it with the customer.")
            )  # fmt: skip
    return reports_rows, events


@dataclass
class LoadTimes:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timing(self, table: str, rows: int) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.rows[table] = rows
        self.seconds[table] = time.perf_counter() - started

    def report(self) -> None:
        for table, seconds in self.seconds.items():
            rows = self.rows[table]
            rate = f"  {rows / seconds:10,.0f} rows/s" if rows else ""
            print(f"  {table:20} {rows:>12,} rows {seconds:8.1f} s{rate}")
        rows, seconds = sum(self.rows.values()), sum(self.seconds.values())
        print(f"  {'total':20} {rows:>12,} rows {seconds:8.1f} s")


async def copy(dsn: str, table: str, rows: Sequence[tuple[Any, ...]], columns: list[str]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(table, records=rows, columns=columns)
    finally:
        await connection.close()


async def load_pings(dsn: str, fleet: Fleet, rng: random.Random, total: int) -> None:
    """Each day's share of the pings into that day's partition, made as the app makes them."""
    engine = create_engine(sqlalchemy_url(dsn))
    today = fleet.now.date()
    first_day = today - dt.timedelta(days=RETENTION_DAYS - 1)
    async with engine.begin() as connection:
        await ensure_ping_partitions(connection, first_day, RETENTION_DAYS - 1 + DAYS_AHEAD)
    await engine.dispose()
    templates = ping_templates(rng, fleet)
    days = [first_day + dt.timedelta(days=offset) for offset in range(RETENTION_DAYS)]
    per_day = [
        total // RETENTION_DAYS + (offset < total % RETENTION_DAYS)
        for offset in range(RETENTION_DAYS)
    ]
    queue: asyncio.Queue[tuple[dt.date, int]] = asyncio.Queue()
    for day, count in zip(days, per_day, strict=True):
        queue.put_nowait((day, count))

    async def copier() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            while not queue.empty():
                day, count = queue.get_nowait()
                rows = ping_rows(rng, templates, day, fleet.now, count)
                await connection.copy_records_to_table(
                    partition_name(day), records=rows, columns=PING_COLUMNS
                )
        finally:
            await connection.close()

    # Two at once: PostgreSQL takes one day's rows while the next day's are made.
    await asyncio.gather(copier(), copier())


def settings_for(dsn: str) -> Settings:
    return Settings(database_url=sqlalchemy_url(dsn), read_database_url="")


@dataclass
class Rows:
    licences: list[tuple[Any, ...]]
    reports: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]


def generate(sizes: Sizes, seed: int) -> tuple[Fleet, Rows]:
    """The same fleet for the same sizes and seed, so a later run can read a loaded database."""
    rng = random.Random(seed)
    fleet = Fleet(now=dt.datetime.now(dt.UTC))
    licence_rows = make_licences(rng, sizes, fleet)
    make_machines(rng, fleet)
    report_rows, event_rows = make_reports(rng, fleet, sizes.reports)
    return fleet, Rows(licence_rows, report_rows, event_rows)


async def load(dsn: str, fleet: Fleet, rows: Rows, pings: int, seed: int) -> LoadTimes:
    times = LoadTimes()
    with times.timing("licences", len(rows.licences)):
        await copy_licences(dsn, rows.licences)
    with times.timing("machines", len(fleet.machine_rows)):
        await copy(dsn, "machines", machines_in_arrival_order(fleet), MACHINE_COLUMNS)
    with times.timing("pings", pings):
        await load_pings(dsn, fleet, random.Random(seed), pings)
    with times.timing("abuse_reports", len(rows.reports)):
        await copy(dsn, "abuse_reports", rows.reports, REPORT_COLUMNS)
    with times.timing("abuse_report_events", len(rows.events)):
        await copy(dsn, "abuse_report_events", rows.events, EVENT_COLUMNS)
    with times.timing("ANALYZE", 0):
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute("ANALYZE")
        finally:
            await connection.close()
    return times


class StatementLog:
    """The SQL (and its parameters) the services send, as the driver receives it."""

    def __init__(self, engine: AsyncEngine):
        self.statements: list[tuple[str, Any]] = []
        self._on = False
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self._on:
            self.statements.append((statement, parameters))

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, Any]]]:
        self.statements = []
        self._on = True
        try:
            yield self.statements
        finally:
            self._on = False


@dataclass(frozen=True)
class Page:
    title: str
    read: Callable[[AsyncSession], Awaitable[object]]


def pages(fleet: Fleet) -> list[Page]:
    counts = sorted(len(owned) for owned in fleet.machines_of)
    biggest = fleet.licence_with(counts[-1])
    typical = fleet.licence_with(counts[len(counts) // 2])

    def report_list(sort: ReportSort, **wanted: Any) -> Callable[[AsyncSession], Awaitable[object]]:
        return lambda session: reports.list_reports(
            session, reports.ReportFilter(**wanted), sort=sort
        )

    def licence_detail(licence: int) -> Callable[[AsyncSession], Awaitable[object]]:
        async def read(session: AsyncSession) -> object:
            # What GET /v1/admin/licences/{id} asks of the service.
            found = await licences.get_licence(session, fleet.licence_ids[licence])
            return await licences.list_machines(session, found)

        return read

    open_ = ReportStatus.OPEN
    week_ago = fleet.now - dt.timedelta(days=7)
    return [
        Page("open reports by severity", report_list(ReportSort.SEVERITY, status=open_)),
        Page("open reports by recency", report_list(ReportSort.LAST_SEEN, status=open_)),
        Page(
            "open machines_over_limit reports of gateway, by severity",
            report_list(
                ReportSort.SEVERITY,
                status=open_,
                kind=ReportKind.MACHINES_OVER_LIMIT,
                product="gateway",
            ),
        ),
        Page(
            "acknowledged reports seen this week, by recency",
            report_list(ReportSort.LAST_SEEN, status=ReportStatus.ACKNOWLEDGED, since=week_ago),
        ),
        Page(f"licence detail, biggest ({counts[-1]:,} machines)", licence_detail(biggest)),
        Page(
            f"licence detail, typical ({counts[len(counts) // 2]} machines)",
            licence_detail(typical),
        ),
    ]


@dataclass
class Timing:
    page: Page
    samples_ms: list[float]
    statements: list[tuple[str, Any]]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95_ms(self) -> float:
        return statistics.quantiles(self.samples_ms, n=20, method="inclusive")[-1]


async def time_page(database: Database, log: StatementLog, page: Page, repetitions: int) -> Timing:
    """A fresh session per read, as each request gets; the last read's SQL is kept."""
    samples = []
    for _ in range(2 + repetitions):
        with log.recording() as statements:
            started = time.perf_counter()
            async with database.read_sessions() as session:
                await page.read(session)
            samples.append((time.perf_counter() - started) * 1000)
    # The first two warm the caches and the connection's prepared statements.
    return Timing(page, samples[2:], list(statements))


async def explain(database: Database, statement: str, parameters: Any) -> str:
    async with database.read_engine.connect() as connection:
        result = await connection.exec_driver_sql(
            f"EXPLAIN (ANALYZE, BUFFERS) {statement}", tuple(parameters or ())
        )
        return "\n".join(row[0] for row in result)


async def big_sequential_scans(database: Database, plan: str) -> list[str]:
    """Relations the plan reads whole that hold more than BIG_TABLE_ROWS rows."""
    flagged = []
    async with database.read_engine.connect() as connection:
        for relation in sorted(set(re.findall(r"Seq Scan on (\w+)", plan))):
            result = await connection.exec_driver_sql(
                "SELECT reltuples::bigint FROM pg_class WHERE relname = $1", (relation,)
            )
            rows = int(result.scalar() or 0)
            if rows > BIG_TABLE_ROWS:
                flagged.append(f"{relation} ({rows:,} rows)")
    return flagged


async def measure(dsn: str, fleet: Fleet, repetitions: int) -> None:
    database = Database(settings_for(dsn))
    log = StatementLog(database.read_engine)
    try:
        timings = [await time_page(database, log, page, repetitions) for page in pages(fleet)]
        print(f"\n{'page':62} {'median':>9} {'p95':>9}  goal {GOAL_MS:.0f} ms")
        for timing in timings:
            verdict = "met" if timing.p95_ms < GOAL_MS else "MISSED"
            figures = f"{timing.median_ms:6.1f} ms {timing.p95_ms:6.1f} ms"
            print(f"{timing.page.title:62} {figures}  {verdict}")
        for timing in timings:
            print(f"\n=== {timing.page.title}")
            for number, (statement, parameters) in enumerate(timing.statements, 1):
                plan = await explain(database, statement, parameters)
                print(f"--- statement {number}\n{statement}\n-- parameters: {parameters}\n{plan}")
                for relation in await big_sequential_scans(database, plan):
                    print(f"!!! SEQUENTIAL SCAN of a big table: {relation}")
    finally:
        await database.dispose()


async def upsert_latencies(
    database: Database, machine: tuple[Any, ...], stop: asyncio.Event
) -> list[float]:
    """The batch writer's machines upsert for one machine, every 10 ms until `stop`: what
    the ping path would wait while a rewrite runs."""
    latencies: list[float] = []
    statement = text(
        "INSERT INTO machines (licence_id, machine_id, first_seen_at, last_seen_at, "
        "last_version, last_user_count, seat) VALUES (:licence, :machine, now(), now(), "
        "'8.2.1', 1, 'granted') ON CONFLICT (licence_id, machine_id) "
        "DO UPDATE SET last_seen_at = excluded.last_seen_at"
    )
    while not stop.is_set():
        started = time.perf_counter()
        async with database.engine.begin() as connection:
            await connection.execute(statement, {"licence": machine[0], "machine": machine[1]})
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.01)
    return latencies


async def measure_erasure(dsn: str, fleet: Fleet) -> None:
    """Erase one licence whole, then time the maintenance step that rewrites what it touched
    (pg_repack online; VACUUM FULL for ended ping partitions), while a machines upsert of
    another licence runs every 10 ms as the ping path's stand-in."""
    database = Database(settings_for(dsn))
    settings = settings_for(dsn)
    victim = fleet.licence_ids[fleet.licence_with(max(len(m) for m in fleet.machines_of))]
    bystander = next(row for row in reversed(fleet.machine_rows) if row[0] != victim)
    try:
        async with database.sessions() as session, session.begin():
            erasure = await erase_licence_data(
                session, victim, delete_licence=True, actor="storebench", now=fleet.now
            )
        print(f"\nerased one licence: {erasure.erased}")
        stop = asyncio.Event()
        idle = asyncio.create_task(upsert_latencies(database, bystander, stop))
        await asyncio.sleep(2)
        stop.set()
        before = await idle
        stop.clear()
        during_task = asyncio.create_task(upsert_latencies(database, bystander, stop))
        started = time.perf_counter()
        rewrites = await rewrite_erased(database.engine, settings, fleet.now.date())
        rewrite_s = time.perf_counter() - started
        stop.set()
        during = await during_task
        print(f"rewrite: {rewrites.done} relations ({rewrites.pending} pending), {rewrite_s:.1f} s")
        for name, values in (("before", before), ("during the rewrite", during)):
            ordered = sorted(values)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            print(
                f"machines upsert {name}: median {statistics.median(values):.2f} ms, "
                f"p99 {p99:.2f} ms, max {ordered[-1]:.2f} ms ({len(values)} upserts)"
            )
    finally:
        await database.dispose()


@contextmanager
def no_garbage_collection() -> Iterator[None]:
    """Generating and loading make tens of millions of tuples and no reference cycles: the
    collector would walk them again and again for nothing (it made generating 4x slower)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of the full size (0.01: 1/100)")
    parser.add_argument("--repetitions", type=int, default=50, help="timed reads per page")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"skip the load: time the reads on the {DATABASE} a run with the same sizes left",
    )
    parser.add_argument(
        "--erasure",
        action="store_true",
        help="instead of the reads: erase one licence and time the hard-erasure rewrite",
    )
    args = parser.parse_args()
    sizes = FULL_SIZE.scaled(args.scale)
    print(f"sizes: {sizes}")
    with no_garbage_collection():
        started = time.perf_counter()
        fleet, rows = generate(sizes, args.seed)
        print(f"generated in {time.perf_counter() - started:.1f} s")
        if args.reuse:
            dsn = database_dsn(DATABASE)
        else:
            dsn = asyncio.run(fresh_database(DATABASE))
            times = asyncio.run(load(dsn, fleet, rows, sizes.pings, args.seed))
            print("load (COPY):")
            times.report()
    if args.erasure:
        asyncio.run(measure_erasure(dsn, fleet))
    else:
        asyncio.run(measure(dsn, fleet, args.repetitions))
    print(f"\nthe database stays for a closer look: {dsn}")


if __name__ == "__main__":
    main()
