"""The app factory: wires settings, the store, the caches and the routers into one ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import Receive, Scope, Send

from app.abuse.buffer import AbuseWorker
from app.abuse.router import router as abuse_router
from app.audit.router import router as audit_router
from app.core import heap, metrics, migrations
from app.core.access_log import AccessLog, RequestObserver
from app.core.auth.dependencies import STAFF_PAGES_PATH
from app.core.clock import Clock, SystemClock
from app.core.components import Components
from app.core.database import Database
from app.core.errors import (
    Unauthenticated,
    install_error_handlers,
    problem_responses,
    problem_schema,
    render_problem,
)
from app.core.health import router as health_router
from app.core.keylist import KeyDirectory, load_key_directory
from app.core.notifications import NotificationListener
from app.core.outage import install_store_trouble_handler
from app.core.pseudonyms import NetworkIds, Pseudonyms
from app.core.ratelimit import RateLimiter
from app.core.secrets import pseudonym_key
from app.core.settings import Settings
from app.core.signing import Signer, load_signer
from app.customer.pages import CUSTOMER_PAGES_PATH, create_customer_app
from app.customer.router import admin_router as customer_admin_router
from app.customer.router import router as customer_router
from app.events.delivery import WebhookWorker
from app.events.router import router as webhooks_router
from app.ingest.writer import BatchWriter
from app.licences.cache import LicenceCache
from app.licences.changes import on_commit
from app.licences.listener import ChangeCounterWatch, follow_licence_changes
from app.licences.lookup import LicenceLookup
from app.licences.router import router as licences_router
from app.ping.router import answer_ping, is_ping
from app.ping.router import document as document_ping
from app.ping.router import router as ping_router
from app.ping.service import PingService
from app.ping.steering import Steering
from app.privacy.maintenance import create_partitions_ahead, maintain_forever
from app.privacy.router import admin_router as privacy_router
from app.privacy.router import public_router as privacy_manifest_router
from app.privacy.router import requests_router as erasure_requests_router
from app.releases import catalog as release_catalog
from app.releases.catalog import Catalog
from app.releases.downloads import DownloadLinks
from app.releases.router import admin_router as releases_router
from app.releases.router import news_router
from app.releases.service import catalog_loader
from app.web.app import create_staff_app


class Callhome(FastAPI):
    """FastAPI with the ping answered in front of it: the fleet's traffic pays for none of
    the framework's per-request work (error and body-limit middleware, telemetry checks,
    routing). Both sides go through the access log; the ping's 200s log at DEBUG."""

    def __init__(self, *, observe_request: RequestObserver | None, **options: Any):
        super().__init__(**options)
        self._ping = AccessLog(answer_ping, observe_request, quiet_status=200)
        self._framework = AccessLog(super().__call__, observe_request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        if is_ping(scope):
            await self._ping(scope, receive, send)
        else:
            await self._framework(scope, receive, send)


def create_served_app() -> FastAPI:
    """The app as `callhome serve` runs it: its heap frozen once started (app/core/heap.py)."""
    return create_app(freeze_heap_at_start=True)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    freeze_heap_at_start: bool = False,
) -> FastAPI:
    settings = settings or Settings()
    clock = clock or SystemClock()
    components = Components()
    components.add(Settings, settings)
    components.add(Clock, clock)  # type: ignore[type-abstract]
    pseudonyms = components.add(Pseudonyms, Pseudonyms(pseudonym_key(settings)))
    signer = components.add(Signer, load_signer(settings))
    components.add(KeyDirectory, load_key_directory(settings, signer, clock.now()))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Made anew at each start: an app may be started again after it stopped.
        database = components.replace(Database, Database(settings))
        if settings.is_embedded:
            await migrations.upgrade(database.engine, settings=settings)
        # Partitions for the coming days exist before the first ping is taken.
        await create_partitions_ahead(database, clock.now())
        cache = LicenceCache(
            max_entries=settings.licence_cache_size,
            # PostgreSQL tells us of every change; SQLite's other processes cannot.
            ttl_s=None if settings.is_postgresql else settings.licence_cache_ttl_s,
        )
        on_commit(database.session_class, cache.invalidate)
        steering = Steering(commit_s=settings.steer_commit_s, max_factor=settings.steer_max_factor)
        writer = BatchWriter(
            database.engine,
            max_batch=settings.batch_max_size,
            timeout_s=settings.store_timeout_s,
            retry_after_s=settings.retry_after_s,
            observe=steering.observe_commit,
        )
        limiter = components.replace(
            RateLimiter, RateLimiter(settings, clock, network_key=pseudonyms.network_limit_key)
        )
        networks = components.replace(
            NetworkIds, NetworkIds(database=database, settings=settings, pseudonyms=pseudonyms)
        )
        catalog = release_catalog.Catalog(
            catalog_loader(database.sessions),
            refresh_interval_s=None if settings.is_postgresql else settings.catalog_refresh_s,
            links=DownloadLinks(settings, clock),
        )
        release_catalog.on_commit(database.session_class, catalog)
        await catalog.refresh()
        listener = NotificationListener(database.engine.url) if settings.is_postgresql else None
        if listener is not None:
            follow_licence_changes(listener, cache)
            catalog.follow(listener)
        # SQLite has no NOTIFY: a counter tells of changes other processes made.
        watch = (
            None
            if settings.is_postgresql
            else ChangeCounterWatch(database, cache, interval_s=settings.licence_change_poll_s)
        )
        components.replace(Catalog, catalog)
        abuse = components.replace(AbuseWorker, AbuseWorker(database, settings, clock))
        webhooks = components.replace(WebhookWorker, WebhookWorker(database, settings, clock))
        licences = components.replace(
            LicenceLookup,
            LicenceLookup(
                database=database, cache=cache, clock=clock, settings=settings, limiter=limiter
            ),
        )
        pings = PingService(
            settings=settings,
            clock=clock,
            database=database,
            pseudonyms=pseudonyms,
            signer=signer,
            licences=licences,
            writer=writer,
            catalog=catalog,
            findings=abuse.findings,
            limiter=limiter,
            networks=networks,
            steering=steering,
        )
        components.replace(PingService, pings)
        writer.start()
        limiter.start()
        abuse.start()
        webhooks.start()
        catalog.start()
        maintenance = asyncio.create_task(maintain_forever(database, settings, clock))
        if listener is not None:
            listener.start()
        if watch is not None:
            await watch.poll()
            watch.start()
        if freeze_heap_at_start:
            heap.freeze_what_lives_for_good()
        try:
            yield
        finally:
            # Awaited before the engine goes: a run cut short must not be left
            # waiting on a disposed connection.
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
            if listener is not None:
                await listener.stop()
            if watch is not None:
                await watch.stop()
            await catalog.stop()
            await writer.stop()
            await limiter.stop()
            await abuse.stop()
            await webhooks.stop()
            await database.dispose()
            metrics.forget_this_process()

    app = Callhome(
        observe_request=metrics.observe_request if settings.metrics_enabled else None,
        title="callhome",
        summary="Licence call-home server that keeps no directly identifying data",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.components = components
    install_error_handlers(app)
    install_store_trouble_handler(app, render_problem)
    app.include_router(ping_router)
    app.include_router(health_router)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    app.include_router(news_router)
    app.include_router(customer_router)
    app.include_router(privacy_manifest_router)
    app.mount(CUSTOMER_PAGES_PATH, create_customer_app(app.state))
    if settings.admin_enabled:
        app.include_router(licences_router)
        app.include_router(abuse_router)
        app.include_router(audit_router)
        app.include_router(releases_router)
        app.include_router(privacy_router)
        app.include_router(erasure_requests_router)
        app.include_router(customer_admin_router)
        app.include_router(webhooks_router)
        app.mount(STAFF_PAGES_PATH, create_staff_app(app.state))
    _document(app)
    return app


def _document(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                problem_schema()
            )
            document_ping(schema)
            _document_staff_auth(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_staff_auth(schema: dict[str, Any]) -> None:
    """Every operation behind a staff token may answer 401: said once here for all of them."""
    unauthenticated = {str(code): spec for code, spec in problem_responses(Unauthenticated).items()}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if operation.get("security"):
                for code, spec in unauthenticated.items():
                    operation.setdefault("responses", {}).setdefault(code, spec)
