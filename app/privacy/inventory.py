"""What callhome stores, declared once: every table and column, its form, purpose and
retention, and how its rows relate to a licence.

`GET /v1/privacy` is generated from this inventory, and export and erasure walk it,
so a table or column that is not declared here fails the tests instead of being
forgotten. A new table adds one `Table(...)` entry to `INVENTORY`.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy import Table as SqlTable

from app.core.settings import Settings


class Form(enum.StrEnum):
    """In what form a value is kept; `FORM_MEANINGS` says what each form means."""

    PSEUDONYMOUS = "pseudonymous"
    ANONYMOUS_AFTER_48H = "anonymous after 48 h"
    AGGREGATE = "aggregate"
    AS_RECEIVED = "as received"
    SERVER_RECORD = "server record"
    STAFF_ENTERED = "staff-entered"
    TRUNCATED = "truncated"
    SECRET_HASH = "secret hash"
    SECRET = "secret"
    SEALED = "sealed"
    PUBLISHED = "published"


FORM_MEANINGS: Mapping[Form, str] = {
    Form.PSEUDONYMOUS: (
        "a keyed hash (HMAC) of an identifying value, under a key kept outside the database: "
        "not anonymous, since whoever holds the key and the value can compute it again"
    ),
    Form.ANONYMOUS_AFTER_48H: (
        "a keyed hash under a random key of its day; the key is destroyed 48 hours after the "
        "day began, and from then on nothing links the hash to what it was made from"
    ),
    Form.AGGREGATE: "counts and figures over many pings, never which machines or networks",
    Form.AS_RECEIVED: "a value of the ping contract, kept as the installed software sent it",
    Form.SERVER_RECORD: "an id, time or decision the server made itself",
    Form.STAFF_ENTERED: "what staff typed or chose: licence terms, notes, token names",
    Form.TRUNCATED: "a few characters of a secret, enough to recognise it, never to use it",
    Form.SECRET_HASH: "a hash of a secret: a copy of the database yields no usable secret",
    Form.SECRET: "random key material",
    Form.SEALED: (
        "a secret the server must use again, encrypted (AES-256-GCM) under a key kept outside "
        "the database: a copy of the database alone yields nothing usable"
    ),
    Form.PUBLISHED: "what release engineering publishes for every install to download",
}


@dataclass(frozen=True)
class Retention:
    """How long a table's rows are kept: `setting` names the live setting in days, if any."""

    rule: str
    setting: str | None = None
    fixed_days: int | None = None

    def days(self, settings: Settings) -> int | None:
        if self.setting is not None:
            days: int = getattr(settings, self.setting)
            return days
        return self.fixed_days


@dataclass(frozen=True)
class Column:
    form: Form
    purpose: str


class OnErasure(enum.StrEnum):
    """What erasing a licence's data does to the rows about it."""

    DELETE = "deleted"
    # The licence itself: kept, unless staff ask for it to go too.
    KEEP_UNLESS_ASKED = "kept unless the licence is deleted too"
    # A record that a staff action happened is kept; use data in it is removed.
    SCRUB = "kept, with any use data in it removed"


RowsAbout = Callable[[SqlTable, uuid.UUID], ColumnElement[bool]]


def licence_id_column(column: str) -> RowsAbout:
    def rows_about(table: SqlTable, licence_id: uuid.UUID) -> ColumnElement[bool]:
        return table.c[column] == licence_id

    return rows_about


def _audit_entries_about(table: SqlTable, licence_id: uuid.UUID) -> ColumnElement[bool]:
    # Entries name the licence as their target, or (for its abuse reports) in their detail.
    return or_(
        and_(table.c.target_type == "licence", table.c.target_id == str(licence_id)),
        table.c.detail["licence_id"].as_string() == str(licence_id),
    )


@dataclass(frozen=True)
class Nesting:
    """Child rows shown inside their parent's entry in the export, under `key`."""

    parent: str
    key: str
    # child column -> parent column
    join: Mapping[str, str]


@dataclass(frozen=True)
class LicenceLink:
    """How a table's rows relate to one licence, and what export and erasure do with them."""

    path: str
    rows_about: RowsAbout
    export_key: str
    on_erasure: OnErasure
    nested_in: Nesting | None = None


@dataclass(frozen=True)
class Table:
    name: str
    holds: str
    retention: Retention
    columns: Mapping[str, Column]
    licence: LicenceLink | None = None


# Keys of an audit entry's `detail` that carry use data, and go when the licence's
# data is erased; the rest records who did what, and stays.
AUDIT_DETAIL_USE_DATA: Mapping[str, str] = {
    "machine": "the shortened pseudonymous id of a machine staff retired",
    "kind": "what an abuse report found about the licence's use",
}

LICENCE_RETENTION = Retention(
    "kept while in force; once expired or revoked this long, erased whole by maintenance "
    "with its use data, reports and the audit entries about it",
    "licence_retention_days",
)
CLOSED_REPORT_RETENTION = Retention(
    "resolved or dismissed reports are deleted with their history this long after closing; "
    "every report goes when its licence's data is erased",
    "closed_report_retention_days",
)
PING_RETENTION = Retention("raw pings expire, a whole UTC day at a time", "ping_retention_days")


def _id(purpose: str = "the row's random id") -> Column:
    return Column(Form.SERVER_RECORD, purpose)


def _at(purpose: str) -> Column:
    return Column(Form.SERVER_RECORD, purpose)


def _by_licence_id(
    export_key: str, on_erasure: OnErasure, nested_in: Nesting | None = None
) -> LicenceLink:
    """Rows found by their licence_id column."""
    return LicenceLink(
        path="licence_id",
        rows_about=licence_id_column("licence_id"),
        export_key=export_key,
        on_erasure=on_erasure,
        nested_in=nested_in,
    )


def _use_data(export_key: str, nested_in: Nesting | None = None) -> LicenceLink:
    """Rows about a licence's use, found by their licence_id: exported, and erased."""
    return _by_licence_id(export_key, OnErasure.DELETE, nested_in)


_LICENCE_ID = Column(Form.SERVER_RECORD, "the licence the row is about")
_MACHINE_ID = Column(
    Form.PSEUDONYMOUS,
    "HMAC of licence id + computer ID: tells a licence's machines apart, "
    "and cannot follow one PC across licences",
)

INVENTORY: tuple[Table, ...] = (
    Table(
        name="licences",
        holds="the licences the vendor sold: their terms, never who holds them",
        retention=LICENCE_RETENTION,
        licence=LicenceLink(
            path="the licence itself (id)",
            rows_about=licence_id_column("id"),
            export_key="licence",
            on_erasure=OnErasure.KEEP_UNLESS_ASKED,
        ),
        columns={
            "id": _id("the licence's random id"),
            "product": Column(Form.STAFF_ENTERED, "which product the licence is for"),
            "key_last4": Column(Form.TRUNCATED, "the key's last 4 characters, for staff"),
            "max_machines": Column(Form.STAFF_ENTERED, "machines in use at once allowed"),
            "max_users": Column(Form.STAFF_ENTERED, "users allowed"),
            "expires_at": Column(Form.STAFF_ENTERED, "when the licence expires"),
            "updates_until": Column(Form.STAFF_ENTERED, "until when updates are offered"),
            "entitlements": Column(Form.STAFF_ENTERED, "signature feeds the licence includes"),
            "overage": Column(Form.STAFF_ENTERED, "what happens over the machine limit"),
            "activity_window_days": Column(Form.STAFF_ENTERED, "how long a machine counts"),
            "trial_days": Column(Form.STAFF_ENTERED, "a trial's length from its first seat"),
            "grace_days": Column(Form.STAFF_ENTERED, "days the product may run after expiry"),
            "lease_minutes": Column(Form.STAFF_ENTERED, "a floating seat's lease"),
            "status": Column(Form.STAFF_ENTERED, "active, suspended or revoked"),
            "external_ref": Column(
                Form.STAFF_ENTERED,
                "the vendor's own reference (a CRM account or order), opaque to callhome; "
                "sent in every licence event so the vendor's systems can match it",
            ),
            "created_at": _at("when the licence was created"),
            "updated_at": _at("when its terms last changed"),
        },
    ),
    Table(
        name="licence_keys",
        holds="the licence each key opens, by the key's HMAC; never the key itself",
        retention=LICENCE_RETENTION,
        licence=_by_licence_id(
            "licence",
            OnErasure.KEEP_UNLESS_ASKED,
            nested_in=Nesting("licences", "keys", {"licence_id": "id"}),
        ),
        columns={
            "key_hash": Column(Form.SECRET_HASH, "HMAC of the licence key: find the licence"),
            "licence_id": _LICENCE_ID,
            "created_at": _at("when the key was issued"),
        },
    ),
    Table(
        name="machines",
        holds="each installation of a licence, by its licence-scoped pseudonym",
        retention=Retention(
            "deleted once unseen for the machine retention and no licence file of it runs",
            "machine_retention_days",
        ),
        licence=_use_data("machines"),
        columns={
            "licence_id": _LICENCE_ID,
            "machine_id": _MACHINE_ID,
            "first_seen_at": _at("the machine's first ping"),
            "last_seen_at": _at("its latest ping: whether it holds a seat"),
            "last_version": Column(Form.AS_RECEIVED, "the version it runs: update offers"),
            "last_user_count": Column(Form.AS_RECEIVED, "its latest user count: the user limit"),
            "seat": Column(Form.SERVER_RECORD, "whether it was granted a seat"),
            "retired_at": _at("when staff retired it (hardware replaced)"),
            "offline_until": _at(
                "activated offline: until when its licence file runs and it holds its seat"
            ),
        },
    ),
    Table(
        name="pings",
        holds="the raw ping log: one row per call",
        retention=PING_RETENTION,
        licence=_use_data("pings"),
        columns={
            "licence_id": _LICENCE_ID,
            "received_at": _at("when the ping arrived"),
            "machine_id": _MACHINE_ID,
            "net_id": Column(
                Form.ANONYMOUS_AFTER_48H,
                "HMAC of the /24 (IPv4) or /48 (IPv6) under the day's key: how many networks "
                "a licence is used from on one day; the address itself is never kept",
            ),
            "product": Column(Form.AS_RECEIVED, "which product called"),
            "version": Column(Form.AS_RECEIVED, "the version it runs"),
            "channel": Column(Form.AS_RECEIVED, "its release channel"),
            "user_count": Column(Form.AS_RECEIVED, "users in use: the user limit"),
            "signatures": Column(Form.AS_RECEIVED, "installed signature set versions"),
            "status": Column(Form.SERVER_RECORD, "the verdict the server gave"),
            "seat": Column(Form.SERVER_RECORD, "whether the machine held a seat"),
        },
    ),
    Table(
        name="daily_usage",
        holds="what remains of a licence's pings once they expire: one row per UTC day",
        retention=Retention(
            "daily rollups expire, a whole UTC day at a time", "rollup_retention_days"
        ),
        licence=_use_data("rollups"),
        columns={
            "licence_id": _LICENCE_ID,
            "day": _at("the UTC day"),
            "pings": Column(Form.AGGREGATE, "pings that day"),
            "machines": Column(Form.AGGREGATE, "distinct machines that day"),
            "networks": Column(Form.AGGREGATE, "distinct networks that day"),
            "peak_users": Column(Form.AGGREGATE, "the highest user count that day"),
            "versions": Column(Form.AGGREGATE, "the versions seen that day"),
        },
    ),
    Table(
        name="abuse_reports",
        holds="findings that a licence is used beyond its terms, for support staff",
        retention=CLOSED_REPORT_RETENTION,
        licence=_use_data("reports"),
        columns={
            "licence_id": _LICENCE_ID,
            "id": _id("the report's random id"),
            "kind": Column(Form.SERVER_RECORD, "what was found"),
            "status": Column(Form.STAFF_ENTERED, "where staff are with it"),
            "severity": Column(Form.AGGREGATE, "how far beyond its terms the licence is"),
            "figure": Column(Form.AGGREGATE, "the latest measure"),
            "peak_figure": Column(Form.AGGREGATE, "the largest measure seen"),
            "allowed": Column(Form.AGGREGATE, "what the licence allows, or the threshold"),
            "first_seen_at": _at("when the finding was first seen"),
            "last_seen_at": _at("when it was last seen"),
            "opened_at": _at("when the report opened"),
            "updated_at": _at("when it last changed"),
            "closed_at": _at("when staff closed it"),
            "evidence": Column(
                Form.PSEUDONYMOUS,
                "the machines behind the finding: machine ids shortened to 12 hex digits, "
                "their first and last ping, version, user count and seat; never a net_id",
            ),
        },
    ),
    Table(
        name="abuse_report_events",
        holds="a report's history: its opening, status changes and staff notes",
        retention=CLOSED_REPORT_RETENTION,
        licence=_use_data(
            "reports", nested_in=Nesting("abuse_reports", "events", {"report_id": "id"})
        ),
        columns={
            "licence_id": _LICENCE_ID,
            "report_id": _id("the report"),
            "seq": _id("the event's place in the report's history"),
            "at": _at("when it happened"),
            "actor": Column(Form.STAFF_ENTERED, "which staff token (by name) acted"),
            "from_status": Column(Form.STAFF_ENTERED, "the status before"),
            "to_status": Column(Form.STAFF_ENTERED, "the status after"),
            "note": Column(Form.STAFF_ENTERED, "free text staff typed: kept as typed"),
        },
    ),
    Table(
        name="abuse_suspects",
        holds="a licence found over its machine limit once, awaiting a second check",
        retention=Retention("until the second check confirms or clears it"),
        licence=_use_data("suspects"),
        columns={
            "licence_id": _LICENCE_ID,
            "kind": Column(Form.SERVER_RECORD, "what is suspected"),
            "noted_at": _at("when it was first noticed"),
            "figure": Column(Form.AGGREGATE, "the measure then"),
        },
    ),
    Table(
        name="audit_log",
        holds="every staff action: who (by token name), what, when, on what",
        retention=Retention(
            "deleted once this old; use data in it is removed when a licence's data is erased, "
            "and the entries about a licence go when the licence is erased whole",
            "audit_retention_days",
        ),
        licence=LicenceLink(
            path="target_id of entries about the licence, or detail.licence_id",
            rows_about=_audit_entries_about,
            export_key="audit",
            on_erasure=OnErasure.SCRUB,
        ),
        columns={
            "id": _id("the entry's place in the log"),
            "at": _at("when"),
            "actor": Column(Form.STAFF_ENTERED, "which staff token (by name), or the CLI"),
            "action": Column(Form.SERVER_RECORD, "what was done"),
            "target_type": Column(Form.SERVER_RECORD, "what kind of thing it was done to"),
            "target_id": Column(Form.SERVER_RECORD, "which one"),
            "detail": Column(
                Form.PSEUDONYMOUS,
                "what changed: licence terms before and after, a report's status; may name a "
                "retired machine by its shortened pseudonymous id, removed on erasure",
            ),
        },
    ),
    Table(
        name="staff_tokens",
        holds="the bearer tokens staff use",
        retention=Retention(
            "deleted once revoked or expired this long, with their sessions",
            "staff_token_retention_days",
        ),
        columns={
            "id": _id("the token's random id"),
            "name": Column(Form.STAFF_ENTERED, "who holds it, as the audit log shows"),
            "token_hash": Column(Form.SECRET_HASH, "SHA-256 of the token"),
            "scopes": Column(Form.STAFF_ENTERED, "what it may do"),
            "created_at": _at("when it was made"),
            "expires_at": Column(Form.STAFF_ENTERED, "when it stops working"),
            "revoked_at": _at("when it was revoked"),
        },
    ),
    Table(
        name="staff_sessions",
        holds=(
            "signed-in browsers of the staff web page; nothing about the fleet or its users, "
            "and no address or browser details of the staff"
        ),
        retention=Retention(
            "until sign-out, or until idle (CALLHOME_STAFF_SESSION_IDLE_S) or past its "
            "lifetime (CALLHOME_STAFF_SESSION_LIFETIME_S), when it is refused and the next "
            "maintenance run deletes it; deleted with its token"
        ),
        columns={
            "id_hash": Column(Form.SECRET_HASH, "SHA-256 of the session cookie"),
            "token_id": Column(Form.SERVER_RECORD, "the staff token that signed in"),
            "csrf_secret": Column(Form.SECRET, "what the session's forms must carry"),
            "created_at": _at("when it was signed in"),
            "last_used_at": _at("when it was last used, for the idle limit"),
            "expires_at": _at("when it ends, however it is used"),
        },
    ),
    Table(
        name="customer_sessions",
        holds=(
            "signed-in browsers of the key holder's /my/ page: which licence, never the key, "
            "and no address or browser details"
        ),
        retention=Retention(
            "until sign-out, or until idle (CALLHOME_CUSTOMER_SESSION_IDLE_S) or past its "
            "lifetime (CALLHOME_CUSTOMER_SESSION_LIFETIME_S), when it is refused and the "
            "next maintenance run deletes it; deleted with the licence"
        ),
        columns={
            "id_hash": Column(Form.SECRET_HASH, "SHA-256 of the session cookie"),
            "licence_id": _LICENCE_ID,
            "csrf_secret": Column(Form.SECRET, "what the session's forms must carry"),
            "created_at": _at("when it was signed in"),
            "last_used_at": _at("when it was last used, for the idle limit"),
            "expires_at": _at("when it ends, however it is used"),
        },
    ),
    Table(
        name="erasure_requests",
        holds="the key holder's requests to erase the licence's data, until staff confirm",
        retention=Retention(
            "until staff confirm it (the erasure removes it too); erased whole with its "
            "licence after the licence retention"
        ),
        licence=_use_data("erasure_requests"),
        columns={
            "licence_id": _LICENCE_ID,
            "requested_at": _at("when the key holder asked"),
        },
    ),
    Table(
        name="day_keys",
        holds="one random key per UTC day for net_id, kept sealed",
        retention=Retention(
            "destroyed 48 hours after its day began, and its bytes removed from the store's "
            "files by the same maintenance run",
            fixed_days=2,
        ),
        columns={
            "day": _at("the UTC day"),
            "sealed_key": Column(
                Form.SEALED,
                "the day's key for net_id, encrypted (AES-256-GCM) under a key derived from "
                "the pseudonym key: the store alone cannot open it",
            ),
            "created_at": _at("when it was made"),
        },
    ),
    Table(
        name="licence_changes",
        holds="how many licence changes were committed, for servers on an embedded store to poll",
        retention=Retention("one row, kept while the store exists"),
        columns={
            "id": Column(Form.SERVER_RECORD, "the one row"),
            "counter": Column(Form.SERVER_RECORD, "changes committed so far"),
        },
    ),
    Table(
        name="job_runs",
        holds=(
            "when each background job (maintenance, the detection sweep, the expiry notices) "
            "last started"
        ),
        retention=Retention("one row per job, overwritten at each run"),
        columns={
            "job": Column(Form.SERVER_RECORD, "which job"),
            "started_at": _at("when its latest run started"),
        },
    ),
    Table(
        name="events",
        holds=(
            "the outbox of events sent to the vendor's webhook endpoints: ids, short machine "
            "references, counts and states; never a key, computer ID, net_id or address"
        ),
        retention=Retention(
            "deleted once delivered (or given up) and older than the webhook retention",
            "webhook_retention_days",
        ),
        licence=_use_data("events"),
        columns={
            "seq": _id("the order events happened in"),
            "id": _id("the event's random id, sent as webhook-id"),
            "type": Column(Form.SERVER_RECORD, "what happened (licence.created, ...)"),
            "licence_id": _LICENCE_ID,
            "occurred_at": _at("when it happened"),
            "payload": Column(
                Form.PSEUDONYMOUS,
                "what is sent: only the fields EVENT_FIELDS declares; may name a machine by "
                "its shortened pseudonymous id",
            ),
            "dedupe_key": Column(
                Form.SERVER_RECORD, "names a notice that must be sent once (type, licence, days)"
            ),
            "planned_at": _at("when its deliveries were made"),
        },
    ),
    Table(
        name="webhook_endpoints",
        holds="the vendor's own receivers of events, and their signing secrets, sealed",
        retention=Retention("until staff remove the endpoint"),
        columns={
            "id": _id("the endpoint's random id"),
            "url": Column(Form.STAFF_ENTERED, "where events are sent (https, public address)"),
            "events": Column(Form.STAFF_ENTERED, "which event types it receives"),
            "ordered": Column(Form.STAFF_ENTERED, "whether deliveries keep event order"),
            "secret_sealed": Column(Form.SEALED, "the key its signatures are made with"),
            "previous_secret_sealed": Column(
                Form.SEALED, "the key before a rotation, for the overlap"
            ),
            "previous_secret_until": _at("until when the previous key signs too"),
            "status": Column(Form.SERVER_RECORD, "active, or disabled after failing too long"),
            "created_at": _at("when it was added"),
            "updated_at": _at("when it last changed"),
            "failing_since": _at("the first failure since its last success"),
            "last_success_at": _at("its latest successful delivery"),
            "disabled_at": _at("when it was disabled"),
        },
    ),
    Table(
        name="webhook_deliveries",
        holds=(
            "the delivery log: each event's attempts to each endpoint; never a body, "
            "neither ours nor the receiver's answer"
        ),
        retention=Retention(
            "deleted with its event (the webhook retention), or with its endpoint",
            "webhook_retention_days",
        ),
        columns={
            "endpoint_id": _id("the endpoint"),
            "event_seq": _id("the event"),
            "status": Column(Form.SERVER_RECORD, "pending, delivered or failed"),
            "attempts": Column(Form.SERVER_RECORD, "how many times it was sent"),
            "next_attempt_at": _at("when it is tried next"),
            "created_at": _at("when it was planned"),
            "last_attempt_at": _at("its latest attempt"),
            "last_status_code": Column(Form.SERVER_RECORD, "the receiver's HTTP status"),
            "last_error": Column(
                Form.SERVER_RECORD, "why the latest attempt failed, from a closed set of classes"
            ),
            "last_latency_ms": Column(Form.SERVER_RECORD, "how long the latest attempt took"),
            "delivered_at": _at("when the receiver took it"),
        },
    ),
    Table(
        name="pending_rewrites",
        holds=(
            "names of tables and ping partitions an erasure deleted rows from, until "
            "maintenance has written them anew (PostgreSQL): nothing about a licence"
        ),
        retention=Retention("until the next maintenance run has rewritten the relation"),
        columns={
            "relation": Column(Form.SERVER_RECORD, "the table or partition to rewrite"),
            "requested_at": _at("when the erasure asked for it"),
        },
    ),
    Table(
        name="releases",
        holds="published releases of each product",
        retention=Retention("while published"),
        columns={
            "id": _id(),
            "product": Column(Form.PUBLISHED, "the product"),
            "channel": Column(Form.PUBLISHED, "its channel"),
            "version": Column(Form.PUBLISHED, "its version"),
            "published_at": Column(Form.PUBLISHED, "its release date"),
            "url": Column(Form.PUBLISHED, "where to download it"),
            "sha256": Column(Form.PUBLISHED, "its digest"),
            "size": Column(Form.PUBLISHED, "its size"),
            "notes_url": Column(Form.PUBLISHED, "its release notes"),
            "critical": Column(Form.PUBLISHED, "whether it must be installed"),
            "min_from_version": Column(Form.PUBLISHED, "the oldest version it updates"),
            "rollout_percent": Column(Form.PUBLISHED, "how far it is rolled out"),
            "yanked_at": _at("when it was withdrawn"),
            "created_at": _at("when it was entered"),
            "updated_at": _at("when it last changed"),
        },
    ),
    Table(
        name="feed_versions",
        holds="published signature sets",
        retention=Retention("while published"),
        columns={
            "feed": Column(Form.PUBLISHED, "the feed"),
            "version": Column(Form.PUBLISHED, "its version"),
            "url": Column(Form.PUBLISHED, "where to download it"),
            "sha256": Column(Form.PUBLISHED, "its digest"),
            "size": Column(Form.PUBLISHED, "its size"),
            "min_product_version": Column(Form.PUBLISHED, "the oldest product that loads it"),
            "published_at": Column(Form.PUBLISHED, "its release date"),
        },
    ),
    Table(
        name="feed_deltas",
        holds="published patches between signature set versions",
        retention=Retention("while published"),
        columns={
            "feed": Column(Form.PUBLISHED, "the feed"),
            "version": Column(Form.PUBLISHED, "the version it leads to"),
            "from_version": Column(Form.PUBLISHED, "the version it starts from"),
            "url": Column(Form.PUBLISHED, "where to download it"),
            "sha256": Column(Form.PUBLISHED, "its digest"),
            "size": Column(Form.PUBLISHED, "its size"),
        },
    ),
)

TABLES: Mapping[str, Table] = {table.name: table for table in INVENTORY}

# Every field an event's payload (`data`) may carry, whatever its type: events are built
# from these and nothing else (tests/test_webhooks_events.py checks every type).
EVENT_FIELDS: Mapping[str, Column] = {
    "licence_id": _LICENCE_ID,
    "external_ref": Column(Form.STAFF_ENTERED, "the vendor's own reference of the licence"),
    "product": Column(Form.STAFF_ENTERED, "the licence's or release's product"),
    "status": Column(Form.STAFF_ENTERED, "the licence's or the report's status"),
    "expires_at": Column(Form.STAFF_ENTERED, "when the licence expires"),
    "updates_until": Column(Form.STAFF_ENTERED, "until when updates are offered"),
    "max_machines": Column(Form.STAFF_ENTERED, "machines in use at once allowed"),
    "max_users": Column(Form.STAFF_ENTERED, "users allowed"),
    "overage": Column(Form.STAFF_ENTERED, "what happens over the machine limit"),
    "entitlements": Column(Form.STAFF_ENTERED, "signature feeds the licence includes"),
    "trial_days": Column(Form.STAFF_ENTERED, "a trial's length from its first seat"),
    "grace_days": Column(Form.STAFF_ENTERED, "days the product may run after expiry"),
    "lease_minutes": Column(Form.STAFF_ENTERED, "a floating seat's lease (null: not floating)"),
    "changed": Column(Form.SERVER_RECORD, "the names of the licence fields that changed"),
    "days": Column(Form.SERVER_RECORD, "licence.expiring: days left, as configured"),
    "machine": Column(
        Form.PSEUDONYMOUS, "a machine's pseudonymous id shortened to 12 hex digits, as staff see it"
    ),
    "by": Column(Form.SERVER_RECORD, "who deactivated a machine: staff or customer"),
    "allowed": Column(Form.AGGREGATE, "what the licence allows, or a report's threshold"),
    "active": Column(Form.AGGREGATE, "machines holding a seat when one was refused"),
    "report_id": _id("the abuse report"),
    "kind": Column(Form.SERVER_RECORD, "what an abuse report found"),
    "severity": Column(Form.AGGREGATE, "how far beyond its terms the licence is"),
    "figure": Column(Form.AGGREGATE, "a report's latest measure"),
    "peak_figure": Column(Form.AGGREGATE, "a report's largest measure"),
    "change": Column(Form.SERVER_RECORD, "report.changed: a status move or a new peak"),
    "release_id": _id("the release"),
    "channel": Column(Form.PUBLISHED, "the release's channel"),
    "version": Column(Form.PUBLISHED, "the release's version"),
    "published_at": Column(Form.PUBLISHED, "the release's date"),
    "critical": Column(Form.PUBLISHED, "whether the release must be installed"),
    "rollout_percent": Column(Form.PUBLISHED, "how far the release is rolled out"),
    "previous_rollout_percent": Column(Form.PUBLISHED, "the rollout before the change"),
    "yanked": Column(Form.PUBLISHED, "whether the release was withdrawn"),
    "endpoint_id": _id("webhook.test: the endpoint it was sent to"),
}


@dataclass(frozen=True)
class Metric:
    """A family on `/metrics`: kept in the server's memory, never in the database."""

    name: str
    measures: str
    labels: Mapping[str, str] = field(default_factory=dict)


# Label name -> the closed set its values come from. A label whose values a caller
# could choose (a key, an id, an address, a path) has no place here.
_STATUS = {"status": "licence status: valid, expired, revoked, suspended, unknown"}
METRICS: tuple[Metric, ...] = (
    Metric("callhome_pings", "pings answered", _STATUS | {"seat": "granted or denied"}),
    Metric("callhome_rate_limited", "pings refused with 429", {"kind": "licence or network"}),
    Metric("callhome_licence_cache_lookups", "licence cache lookups", {"result": "hit or miss"}),
    Metric("callhome_batch_size", "pings per group commit"),
    Metric("callhome_batch_commit_seconds", "time to commit a batch"),
    Metric("callhome_batch_failures", "batches the store did not take"),
    Metric("callhome_writer_queue_depth", "pings waiting for the next batch"),
    Metric("callhome_check_in_factor", "how far next_check_in is stretched"),
    Metric("callhome_abuse_reports_opened", "abuse reports opened", {"kind": "the report kind"}),
    Metric(
        "callhome_webhook_deliveries",
        "webhook delivery attempts",
        {"outcome": "delivered, retrying or failed"},
    ),
    Metric("callhome_webhook_queue_depth", "webhook deliveries waiting"),
    Metric("callhome_webhook_oldest_undelivered_seconds", "age of the oldest waiting event"),
    Metric("callhome_webhook_endpoints_disabled", "endpoints disabled after failing too long"),
    Metric(
        "callhome_request_duration_seconds",
        "request latency",
        {
            "method": "the HTTP method, or OTHER",
            "route": "the route template, never the path a client sent",
            "status": "the HTTP status code",
        },
    ),
)
# The standard families of the server process itself (memory, CPU, garbage collector),
# declared by their prefix.
RUNTIME_METRICS: tuple[Metric, ...] = (
    Metric(
        "process_*",
        "the server process itself: CPU seconds, resident and virtual memory, open and "
        "maximum file descriptors, start time",
    ),
    Metric(
        "python_*",
        "the Python runtime: garbage collections, objects collected and uncollectable, and "
        "python_info naming the interpreter",
        {"implementation, major, minor, patchlevel, version": "the Python interpreter's own"},
    ),
)

RUNTIME_METRIC_PREFIXES = tuple(metric.name.removesuffix("*") for metric in RUNTIME_METRICS)


@dataclass(frozen=True)
class Elsewhere:
    """Something kept outside the database's declared tables: another store, a log, a file."""

    name: str
    where: str
    holds: str
    form: Form
    retention: Retention


_RATE_WINDOW = Retention(
    "expires two hours after its hourly window began (Redis EXPIRE): the previous window is "
    "still read for an hour, nothing longer"
)
ELSEWHERE: tuple[Elsewhere, ...] = (
    Elsewhere(
        "alembic_version",
        "the database",
        "the schema's migration revision, one row",
        Form.SERVER_RECORD,
        Retention("replaced at each upgrade"),
    ),
    Elsewhere(
        "callhome:rate:licence:<hour>:<key_hash>",
        "Redis, only when CALLHOME_RATE_LIMIT_REDIS_URL is set",
        "pings counted in one hour for one licence key, named by the key's HMAC (key_hash)",
        Form.SECRET_HASH,
        _RATE_WINDOW,
    ),
    Elsewhere(
        "callhome:rate:network:<hour>:<network>",
        "Redis, only when CALLHOME_RATE_LIMIT_REDIS_URL is set",
        "pings counted in one hour from one /24 (IPv4) or /48 (IPv6), named by an HMAC of the "
        "prefix under a key derived from the pseudonym key and held only in memory; not the "
        "net_id kept with pings, so it links to no licence",
        Form.PSEUDONYMOUS,
        _RATE_WINDOW,
    ),
    Elsewhere(
        "access log",
        "the server's standard error, and wherever the operator sends it",
        "one line a request: method, route template, status, duration and a random request "
        "id; never an address, a path as sent, a query string or a body",
        Form.SERVER_RECORD,
        Retention("as long as the operator keeps logs: callhome keeps none itself"),
    ),
    Elsewhere(
        "pseudonym.key",
        "the data directory (embedded default; otherwise CALLHOME_PSEUDONYM_KEY)",
        "the key of every pseudonym: key_hash, machine_id, and the key day keys are sealed "
        "under; owner-only (0600)",
        Form.SECRET,
        Retention("until the operator replaces it; every pseudonym then changes"),
    ),
    Elsewhere(
        "signing-key.pem",
        "the data directory (embedded default; otherwise CALLHOME_SIGNING_KEY_FILE)",
        "the Ed25519 key that signs every answer; owner-only (0600)",
        Form.SECRET,
        Retention("until the operator replaces it"),
    ),
    Elsewhere(
        "key-list.json",
        "the data directory (embedded default; otherwise CALLHOME_KEY_LIST_FILE), once "
        "`callhome keys` has made one",
        "the root-signed list of signing keys served at GET /v1/keys: public keys, their "
        "validity and signatures, nothing about the fleet",
        Form.PUBLISHED,
        Retention("until the next `callhome keys` command replaces it"),
    ),
    Elsewhere(
        "callhome.sqlite3, callhome.sqlite3-wal, callhome.sqlite3-shm",
        "the data directory (embedded default)",
        "the tables above, its write-ahead log and that log's index; owner-only (0600)",
        Form.SERVER_RECORD,
        Retention(
            "as each table says; deleted rows are overwritten and the write-ahead log emptied "
            "by the maintenance run"
        ),
    ),
    Elsewhere(
        "metrics/",
        "the data directory, when the server runs several workers",
        "each worker's values of the metrics below, to be summed; owner-only directory",
        Form.AGGREGATE,
        Retention("emptied at each start"),
    ),
    Elsewhere(
        "server memory",
        "each server process",
        "the licence cache (key_hash to licence terms and seated machine_ids), today's day key, "
        "rate-limit counts by pseudonym",
        Form.PSEUDONYMOUS,
        Retention(
            "while the process runs; the day key is dropped when its day ends, idle rate-limit "
            "counts after two hours"
        ),
    ),
)


@dataclass(frozen=True)
class Mismatch:
    """Where the inventory and the schema disagree; empty when they match."""

    undeclared: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)


def compare_with_schema(tables: Mapping[str, SqlTable]) -> Mismatch:
    """`table.column` names the schema has and the inventory lacks, and the reverse."""
    schema = {f"{name}.{column.name}" for name, table in tables.items() for column in table.c}
    declared = {f"{table.name}.{column}" for table in INVENTORY for column in table.columns}
    return Mismatch(sorted(schema - declared), sorted(declared - schema))
