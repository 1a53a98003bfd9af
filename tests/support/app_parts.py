"""The one place tests reach a running app's parts, read from its typed component registry."""

from __future__ import annotations

from fastapi import FastAPI

from app.abuse.buffer import AbuseWorker
from app.core.clock import Clock
from app.core.components import components_of
from app.core.database import Database
from app.core.pseudonyms import Pseudonyms
from app.core.ratelimit import RateLimiter
from app.core.settings import Settings
from app.core.signing import Signer
from app.events.delivery import WebhookWorker


def database(app: FastAPI) -> Database:
    return components_of(app.state).get(Database)


def abuse(app: FastAPI) -> AbuseWorker:
    return components_of(app.state).get(AbuseWorker)


def clock(app: FastAPI) -> Clock:
    return components_of(app.state).get(Clock)  # type: ignore[type-abstract]


def settings(app: FastAPI) -> Settings:
    return components_of(app.state).get(Settings)


def pseudonyms(app: FastAPI) -> Pseudonyms:
    return components_of(app.state).get(Pseudonyms)


def rate_limiter(app: FastAPI) -> RateLimiter:
    return components_of(app.state).get(RateLimiter)


def signer(app: FastAPI) -> Signer:
    return components_of(app.state).get(Signer)


def webhooks(app: FastAPI) -> WebhookWorker:
    return components_of(app.state).get(WebhookWorker)
