"""The one place tests reach a running app's parts: only this module knows where they hang."""

from __future__ import annotations

from fastapi import FastAPI

from app.abuse.buffer import AbuseWorker
from app.core.clock import Clock
from app.core.database import Database
from app.core.pseudonyms import Pseudonyms
from app.core.settings import Settings
from app.core.signing import Signer
from app.ping.ratelimit import RateLimiter


def database(app: FastAPI) -> Database:
    part: Database = app.state.database
    return part


def abuse(app: FastAPI) -> AbuseWorker:
    part: AbuseWorker = app.state.abuse
    return part


def clock(app: FastAPI) -> Clock:
    part: Clock = app.state.clock
    return part


def settings(app: FastAPI) -> Settings:
    part: Settings = app.state.settings
    return part


def pseudonyms(app: FastAPI) -> Pseudonyms:
    part: Pseudonyms = app.state.pseudonyms
    return part


def rate_limiter(app: FastAPI) -> RateLimiter:
    part: RateLimiter = app.state.rate_limiter
    return part


def signer(app: FastAPI) -> Signer:
    part: Signer = app.state.signer
    return part
