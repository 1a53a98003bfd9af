"""Staff tokens for tests, made through the token service, and the header that carries one."""

from __future__ import annotations

import asyncio
import datetime as dt

from fastapi import FastAPI

from app.core import auth
from app.core.database import Database
from tests.support import app_parts
from tests.support.stores import Store


async def issue_token(app: FastAPI, *scopes: auth.Scope, name: str = "tester") -> str:
    async with app_parts.database(app).sessions() as session, session.begin():
        issued = await auth.create_token(
            session, name=name, scopes=list(scopes), now=app_parts.clock(app).now()
        )
    return issued.secret


async def staff_headers(app: FastAPI, *scopes: auth.Scope, name: str = "tester") -> dict[str, str]:
    """The headers of a staff member holding a fresh token with these scopes."""
    return bearer(await issue_token(app, *scopes, name=name))


def staff_token(store: Store, *scopes: auth.Scope, name: str = "tester") -> str:
    """A token straight in the store, for a test whose server runs in another process."""

    async def create() -> str:
        database = Database(store.settings)
        try:
            async with database.sessions() as session, session.begin():
                issued = await auth.create_token(
                    session, name=name, scopes=list(scopes), now=dt.datetime.now(dt.UTC)
                )
        finally:
            await database.dispose()
        return issued.secret

    return asyncio.run(create())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
