"""Wire models of the privacy manifest (`GET /v1/privacy`) and the erasure answer."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from app.core.schemas import ResponseModel


class FieldOut(ResponseModel):
    name: str
    form: str
    purpose: str
    retention_days: int | None = Field(description="From the live settings; null: see `rule`")


class RetentionOut(ResponseModel):
    rule: str
    days: int | None
    setting: str | None = Field(description="The environment variable that sets `days`")


class TableOut(ResponseModel):
    table: str
    holds: str
    retention: RetentionOut
    about_a_licence: str | None = Field(description="How a row names its licence, if it does")
    on_erasure: str | None = Field(description="What erasing a licence's data does to the rows")
    fields: list[FieldOut]


class MetricOut(ResponseModel):
    name: str
    measures: str
    labels: dict[str, str] = Field(description="Label name -> the closed set of its values")


class EventFieldOut(ResponseModel):
    name: str
    form: str
    purpose: str


class ElsewhereOut(ResponseModel):
    name: str
    where: str
    holds: str
    form: str
    retention: RetentionOut


class Manifest(ResponseModel):
    summary: str
    never_stored: list[str]
    pseudonymous_not_anonymous: str
    forms: dict[str, str]
    tables: list[TableOut]
    elsewhere: list[ElsewhereOut] = Field(
        description="What is kept outside the tables above: Redis, logs, files, memory"
    )
    metrics: list[MetricOut] = Field(description="Figures on /metrics: in memory, never stored")
    event_fields: list[EventFieldOut] = Field(
        description="Every field a webhook event may carry to the vendor's endpoints"
    )


class ErasureOut(ResponseModel):
    licence_id: str
    erased: dict[str, int] = Field(description="Rows removed, per table")
    scrubbed: dict[str, int] = Field(description="Audit entries kept without their use data")
    licence_deleted: bool


class ErasureRequestOut(ResponseModel):
    licence_id: uuid.UUID
    product: str
    key_last4: str = Field(description="The licence key's last 4 characters")
    requested_at: dt.datetime


class ErasureRequestList(ResponseModel):
    items: list[ErasureRequestOut] = Field(description="The oldest first")
