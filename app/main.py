"""The app factory: wires settings, the store, the caches and the routers into one ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.abuse.buffer import AbuseWorker
from app.abuse.router import router as abuse_router
from app.audit.router import router as audit_router
from app.core import migrations
from app.core.access_log import AccessLog
from app.core.clock import Clock, SystemClock
from app.core.database import Database
from app.core.errors import install_error_handlers, problem_schema
from app.core.health import router as health_router
from app.core.notifications import NotificationListener
from app.core.pseudonyms import Pseudonyms
from app.core.secrets import pseudonym_key
from app.core.settings import Settings
from app.core.signing import load_signer
from app.ingest.writer import BatchWriter
from app.licences.cache import LicenceCache
from app.licences.changes import on_commit
from app.licences.listener import follow_licence_changes
from app.licences.router import router as licences_router
from app.ping.router import PingRoute
from app.ping.router import document as document_ping
from app.ping.router import router as ping_router
from app.ping.service import PingService
from app.privacy.maintenance import maintain_forever, run_maintenance
from app.releases import catalog as release_catalog
from app.releases.router import admin_router as releases_router
from app.releases.router import news_router
from app.releases.service import catalog_loader


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings)
        if settings.is_embedded:
            await migrations.upgrade(database.engine)
        # Partitions for the coming days exist before the first ping is taken.
        await run_maintenance(database, app.state.clock.now())
        app.state.database = database
        cache = LicenceCache(
            max_entries=settings.licence_cache_size,
            # PostgreSQL tells us of every change; SQLite's other processes cannot.
            ttl_s=None if settings.is_postgresql else settings.licence_cache_ttl_s,
        )
        on_commit(database.session_class, cache.invalidate)
        writer = BatchWriter(
            database.engine,
            max_batch=settings.batch_max_size,
            timeout_s=settings.store_timeout_s,
            retry_after_s=settings.retry_after_s,
        )
        catalog = release_catalog.Catalog(
            catalog_loader(database.sessions),
            refresh_interval_s=None if settings.is_postgresql else settings.catalog_refresh_s,
        )
        release_catalog.on_commit(database.session_class, catalog)
        await catalog.refresh()
        listener = NotificationListener(database.engine.url) if settings.is_postgresql else None
        if listener is not None:
            follow_licence_changes(listener, cache)
            catalog.follow(listener)
        app.state.licence_cache = cache
        abuse = AbuseWorker(database, settings, app.state.clock)
        app.state.abuse = abuse
        app.state.catalog = catalog
        app.state.notifications = listener
        app.state.pings = PingService(
            settings=settings,
            clock=app.state.clock,
            database=database,
            pseudonyms=app.state.pseudonyms,
            signer=app.state.signer,
            cache=cache,
            writer=writer,
            catalog=catalog,
            findings=abuse.findings,
        )
        writer.start()
        abuse.start()
        catalog.start()
        maintenance = asyncio.create_task(
            maintain_forever(database, app.state.clock, settings.maintenance_interval_s)
        )
        if listener is not None:
            listener.start()
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
            await catalog.stop()
            await writer.stop()
            await abuse.stop()
            await database.dispose()

    app = FastAPI(
        title="callhome",
        summary="Licence call-home server that keeps no personal data",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.pseudonyms = Pseudonyms(pseudonym_key(settings))
    app.state.signer = load_signer(settings)
    install_error_handlers(app)
    app.add_middleware(PingRoute)
    app.add_middleware(AccessLog)
    app.include_router(ping_router)
    app.include_router(health_router)
    app.include_router(news_router)
    if settings.admin_enabled:
        app.include_router(licences_router)
        app.include_router(abuse_router)
        app.include_router(audit_router)
        app.include_router(releases_router)
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
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
