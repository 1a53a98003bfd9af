"""The privacy manifest: what is stored, in what form, why and for how long, generated
from the inventory and the live settings."""

from __future__ import annotations

from app.core.settings import Settings
from app.privacy.inventory import (
    ELSEWHERE,
    EVENT_FIELDS,
    FORM_MEANINGS,
    INVENTORY,
    METRICS,
    RUNTIME_METRICS,
    Elsewhere,
    Retention,
    Table,
)
from app.privacy.schemas import (
    ElsewhereOut,
    EventFieldOut,
    FieldOut,
    Manifest,
    MetricOut,
    RetentionOut,
    TableOut,
)

SUMMARY = (
    "callhome keeps no directly identifying data: no IP address, computer ID or licence key "
    "is ever stored or logged. What it keeps about installations is pseudonymous data, which "
    "is still personal data under GDPR Recital 26: a machine_id or key_hash can be computed "
    "again by whoever holds the pseudonym key and the original value, so it is kept only as "
    "long as its purpose needs. A net_id becomes anonymous when its day key is destroyed, 48 "
    "hours after its day began. Below is every field stored, and everything kept elsewhere, "
    "with its form, its purpose and how long it is kept."
)
NEVER_STORED = [
    "client IP address (only a net_id, scoped to the licence and the day, anonymous 48 hours "
    "after its day began)",
    "computer ID (only a machine_id, pseudonymous, scoped to the licence)",
    "licence key (only a keyed hash and its last 4 characters)",
]
PSEUDONYMOUS_NOT_ANONYMOUS = (
    "Machine ids are pseudonymous, not anonymous: a machine_id is an HMAC of the licence id "
    "and the computer ID under a key kept outside the database, so whoever holds that key "
    "and a computer ID can compute its machine_id again."
)


def _retention(retention: Retention, settings: Settings) -> RetentionOut:
    setting = f"CALLHOME_{retention.setting.upper()}" if retention.setting else None
    return RetentionOut(rule=retention.rule, days=retention.days(settings), setting=setting)


def _table(table: Table, settings: Settings) -> TableOut:
    days = table.retention.days(settings)
    return TableOut(
        table=table.name,
        holds=table.holds,
        retention=_retention(table.retention, settings),
        about_a_licence=table.licence.path if table.licence else None,
        on_erasure=table.licence.on_erasure.value if table.licence else None,
        fields=[
            FieldOut(name=name, form=column.form, purpose=column.purpose, retention_days=days)
            for name, column in table.columns.items()
        ],
    )


def _elsewhere(kept: Elsewhere, settings: Settings) -> ElsewhereOut:
    return ElsewhereOut(
        name=kept.name,
        where=kept.where,
        holds=kept.holds,
        form=kept.form.value,
        retention=_retention(kept.retention, settings),
    )


def manifest(settings: Settings) -> Manifest:
    return Manifest(
        summary=SUMMARY,
        never_stored=NEVER_STORED,
        pseudonymous_not_anonymous=PSEUDONYMOUS_NOT_ANONYMOUS,
        forms={form.value: meaning for form, meaning in FORM_MEANINGS.items()},
        tables=[_table(table, settings) for table in INVENTORY],
        elsewhere=[_elsewhere(kept, settings) for kept in ELSEWHERE],
        metrics=[
            MetricOut(name=metric.name, measures=metric.measures, labels=dict(metric.labels))
            for metric in (*METRICS, *RUNTIME_METRICS)
        ],
        event_fields=[
            EventFieldOut(name=name, form=column.form, purpose=column.purpose)
            for name, column in EVENT_FIELDS.items()
        ],
    )
