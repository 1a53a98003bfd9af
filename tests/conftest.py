"""Fixtures: store-touching tests run on SQLite and PostgreSQL, each on a fresh database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from app.core import auth
from app.core.settings import Settings
from app.main import create_app
from tests.support import browser, stores
from tests.support.clocks import FrozenClock
from tests.support.receiver import Receiver
from tests.support.stores import TEST_PSEUDONYM_KEY, Store
from tests.support.tokens import staff_headers
from tests.support.webhooks import hand_turned_worker, webhook_settings

REDIS_ENV = "CALLHOME_TEST_REDIS_URL"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def postgres_templates() -> Iterator[stores.PostgresTemplates | None]:
    url = stores.postgresql_url()
    if url is None:
        yield None
        return
    templates = stores.PostgresTemplates(url)
    asyncio.run(templates.create_template())
    yield templates
    templates.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stores.sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_templates: stores.PostgresTemplates | None,
) -> Iterator[Store]:
    """A fresh, migrated database of each kind, and settings that point at it."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        stores.sqlite_clone(sqlite_template, data_dir)
        yield Store("sqlite", Settings(data_dir=data_dir, pseudonym_key=TEST_PSEUDONYM_KEY))
        return
    if postgres_templates is None:
        if stores.running_in_ci():
            pytest.fail(f"{stores.PG_ENV} is not set: CI must test PostgreSQL")
        pytest.skip(f"PostgreSQL tests need {stores.PG_ENV}")
    url = postgres_templates.clone()
    data_dir.mkdir(parents=True)
    key_file = data_dir / "signing-key.pem"
    from app.core.signing import new_private_key_pem

    key_file.write_bytes(new_private_key_pem())
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        pseudonym_key=TEST_PSEUDONYM_KEY,
        signing_key_file=key_file,
    )
    yield Store("postgresql", settings)
    postgres_templates.drop(url)


@pytest.fixture
def redis_url() -> str:
    """A Redis the test may write to (keys it makes are its own), as the shared rate limits use."""
    url = os.environ.get(REDIS_ENV, DEFAULT_TEST_REDIS_URL)
    try:
        with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as probe:
            answered = bool(probe.ping())
    except redis.RedisError:
        answered = False
    if not answered:
        if stores.running_in_ci():
            pytest.fail(f"no Redis at {url} ({REDIS_ENV}): CI must test shared rate limits")
        pytest.skip(f"shared rate-limit tests need Redis ({REDIS_ENV})")
    return url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def app(store: Store, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(store.settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
        yield http


@pytest.fixture
async def admin_headers(app: FastAPI) -> dict[str, str]:
    return await staff_headers(app, *auth.Scope, name="admin")


@pytest.fixture
async def hook_app(store: Store, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    """An app whose webhooks may go to a loopback receiver; the test turns the worker."""
    application = create_app(webhook_settings(store), clock=clock)
    async with application.router.lifespan_context(application), hand_turned_worker(application):
        yield application


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver listening on a loopback socket."""
    running = Receiver()
    await running.up()
    yield running
    await running.down()


# Module scope: Playwright's sync API holds an event loop in this thread while it runs,
# and the tests after these need the thread's asyncio to themselves.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium for a module's tests, or a skip (a failure under CI=true)."""
    executable = browser.chromium_path()
    if executable is None:
        browser.unavailable("no chromium on PATH")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser.unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
