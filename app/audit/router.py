"""Staff API for the audit log, read with the licences:read scope (docs/abuse.md says why)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import service
from app.audit.auth import AuditReader
from app.audit.schemas import AuditEntryOut, AuditPage
from app.core.deps import ReadSession
from app.core.errors import Forbidden, InvalidInput, problem_responses
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, CursorQuery
from app.core.schemas import PRINTABLE_PATTERN, Moment

router = APIRouter(
    prefix="/v1/admin/audit-log",
    tags=["audit"],
    responses=problem_responses(InvalidInput, Forbidden),
)

Word = Annotated[str | None, Query(min_length=1, max_length=64, pattern=PRINTABLE_PATTERN)]


@router.get("")
async def list_audit_log(
    _: AuditReader,
    session: ReadSession,
    actor: Word = None,
    action: Word = None,
    target_type: Word = None,
    target_id: Word = None,
    since: Moment | None = None,
    until: Moment | None = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> AuditPage:
    wanted = service.AuditFilter(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
    )
    entries, next_cursor = await service.list_entries(session, wanted, cursor=cursor, limit=limit)
    return AuditPage(
        items=[AuditEntryOut.model_validate(entry) for entry in entries],
        next_cursor=next_cursor,
    )
