"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from sqlalchemy import text

from app.core.deps import DatabaseDep, SettingsDep
from app.core.errors import StoreUnavailable, problem_responses

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(StoreUnavailable))
async def readyz(database: DatabaseDep, settings: SettingsDep) -> dict[str, str]:
    """The store answers: a load balancer sends pings here only then."""
    try:
        async with asyncio.timeout(settings.store_timeout_s):
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as error:
        raise StoreUnavailable(settings.retry_after_s) from error
    return {"status": "ready"}
