"""Typed dependencies every domain's routes share: settings, the time, the store, signing."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.components import component
from app.core.database import Database
from app.core.keylist import KeyDirectory
from app.core.pseudonyms import Pseudonyms
from app.core.settings import Settings
from app.core.signing import Signer

SettingsDep = Annotated[Settings, Depends(component(Settings))]
ClockDep = Annotated[Clock, Depends(component(Clock))]
DatabaseDep = Annotated[Database, Depends(component(Database))]
PseudonymsDep = Annotated[Pseudonyms, Depends(component(Pseudonyms))]
SignerDep = Annotated[Signer, Depends(component(Signer))]
KeyDirectoryDep = Annotated[KeyDirectory, Depends(component(KeyDirectory))]


def _now(clock: ClockDep) -> dt.datetime:
    return clock.now()


# One reading of the clock per request: every decision in it sees the same moment.
Now = Annotated[dt.datetime, Depends(_now)]


async def _write_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """The per-request session: commits when the route succeeds, rolls back when it raises."""
    async with database.sessions() as session, session.begin():
        yield session


async def _read_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    async with database.read_sessions() as session:
        yield session


# "function" scope: the commit happens before the answer leaves, so a route
# never reports success for a change that then fails to commit.
WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(_read_session, scope="function")]
