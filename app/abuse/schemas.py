"""Wire models of the abuse-report staff API."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated, Any

from pydantic import StringConstraints

from app.abuse.models import ReportKind, ReportStatus
from app.core.schemas import TEXT_PATTERN, ResponseModel, StrictModel

Note = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=TEXT_PATTERN),
]


class ReportSort(enum.StrEnum):
    SEVERITY = "severity"
    LAST_SEEN = "last_seen"


class ReportChange(StrictModel):
    """A note, and the status it moves the report to (none: the note alone)."""

    status: ReportStatus | None = None
    note: Note


class ReportOut(ResponseModel):
    id: uuid.UUID
    licence_id: uuid.UUID
    product: str
    kind: ReportKind
    status: ReportStatus
    severity: int
    figure: int
    peak_figure: int
    allowed: int
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    opened_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None


class ReportEventOut(ResponseModel):
    seq: int
    at: dt.datetime
    actor: str
    from_status: ReportStatus | None
    to_status: ReportStatus
    note: str


class ReportDetail(ReportOut):
    evidence: dict[str, Any]
    events: list[ReportEventOut]


class ReportPage(ResponseModel):
    items: list[ReportOut]
    next_cursor: str | None
