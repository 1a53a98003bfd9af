"""Wire models of the audit-log staff API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.core.schemas import ResponseModel


class AuditEntryOut(ResponseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    detail: dict[str, Any]


class AuditPage(ResponseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None
