"""Webhook secrets at rest: sealed under a key from outside the database, so a copy of the
database cannot sign a webhook; the migration seals secrets stored before, on both stores."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from app.core import migrations
from app.core.auth import Scope
from app.core.database import create_engine
from app.core.sealing import Unsealable
from app.events.models import WebhookEndpoint
from app.events.signing import EndpointSecrets, new_secret
from app.main import create_app
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.dumps import full_dump
from tests.support.licences import create_licence
from tests.support.receiver import Receiver
from tests.support.stores import Store
from tests.support.tokens import staff_headers
from tests.support.webhooks import (
    add_endpoint,
    client_of,
    deliver_until_idle,
    hand_turned_worker,
    webhook_settings,
)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

BEFORE_SEALING = "0012_i18_webhooks"


def secret_material(secret: str) -> list[str]:
    """A secret as the receiver holds it, and the key bytes inside it as text."""
    key = secret.removeprefix("whsec_")
    return [secret, key, key.rstrip("=")]


async def test_a_copy_of_the_database_holds_no_usable_secret(
    store: Store, hook_app: FastAPI, receiver: Receiver, clock: FrozenClock
) -> None:
    async with client_of(hook_app) as http:
        added = await add_endpoint(http, hook_app, receiver.url, ["licence.created"])
        headers = await staff_headers(hook_app, Scope.WEBHOOKS_WRITE)
        rotated = await http.post(
            f"/v1/admin/webhooks/{added['id']}/rotate-secret", headers=headers
        )
        receiver.secrets = [rotated.json()["secret"]]
        await create_licence(http, hook_app)
        await deliver_until_idle(hook_app, clock)
    assert len(receiver.received) == 1 and receiver.forged == []

    dump = await full_dump(store)
    for secret in (added["secret"], rotated.json()["secret"]):
        leaked = [text for text in secret_material(secret) if text in dump]
        assert not leaked, "the store holds a webhook secret"
    async with app_parts.database(hook_app).sessions() as session:
        endpoint = await session.get(WebhookEndpoint, uuid.UUID(added["id"]))
    assert endpoint is not None and endpoint.previous_secret_sealed is not None
    assert endpoint.secret_sealed.startswith("v1.")


async def test_without_the_key_from_outside_the_database_nothing_is_signed(
    store: Store, hook_app: FastAPI, receiver: Receiver, clock: FrozenClock
) -> None:
    """A server given another pseudonym key (as a thief with the database alone would be)
    opens no secret: it sends nothing and says why in the delivery log."""
    async with client_of(hook_app) as http:
        added = await add_endpoint(http, hook_app, receiver.url, ["licence.created"])
        await create_licence(http, hook_app)
    other_key = webhook_settings(store, pseudonym_key="another-pseudonym-key-" + "x" * 32)
    thief = create_app(other_key, clock=clock)
    async with (
        thief.router.lifespan_context(thief),
        hand_turned_worker(thief) as worker,
        client_of(thief) as http,
    ):
        await worker.run_once()
        headers = await staff_headers(thief, Scope.WEBHOOKS_WRITE)
        log = await http.get(f"/v1/admin/webhooks/{added['id']}/deliveries", headers=headers)
    (delivery,) = log.json()["items"]
    assert receiver.received == [] and receiver.forged == []
    assert (delivery["status"], delivery["last_error"]) == ("pending", "secret_unreadable")


async def test_a_sealed_secret_opens_only_for_its_own_endpoint(store: Store) -> None:
    secrets = EndpointSecrets(store.settings)
    mine, other = uuid.uuid4(), uuid.uuid4()
    secret = new_secret()
    sealed = secrets.seal(mine, secret)
    assert secrets.open(mine, sealed) == secret
    assert sealed != secrets.seal(mine, secret)  # a fresh nonce each time
    for bad in (lambda: secrets.open(other, sealed), lambda: secrets.open(mine, sealed[:-4])):
        with pytest.raises(Unsealable):
            bad()


webhook_endpoints = sa.table(
    "webhook_endpoints",
    sa.column("id", sa.Uuid()),
    sa.column("url", sa.String()),
    sa.column("events", sa.JSON()),
    sa.column("ordered", sa.Boolean()),
    sa.column("secret", sa.String()),
    sa.column("previous_secret", sa.String()),
    sa.column("previous_secret_until", sa.DateTime(timezone=True)),
    sa.column("status", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


async def test_the_migration_seals_secrets_stored_before_and_delivery_goes_on(
    store: Store, clock: FrozenClock, receiver: Receiver
) -> None:
    settings = webhook_settings(store)
    endpoint_id, secret, previous = uuid.uuid4(), new_secret(), new_secret()
    engine = create_engine(store.url)
    try:
        await migrations.downgrade(engine, BEFORE_SEALING, settings=settings)
        async with engine.begin() as connection:
            await connection.execute(
                webhook_endpoints.insert().values(
                    id=endpoint_id,
                    url=receiver.url,
                    events=["licence.created"],
                    ordered=False,
                    secret=secret,
                    previous_secret=previous,
                    previous_secret_until=clock.now() + dt.timedelta(hours=1),
                    status="active",
                    created_at=clock.now(),
                    updated_at=clock.now(),
                )
            )
        await migrations.upgrade(engine, settings=settings)
    finally:
        await engine.dispose()

    dump = await full_dump(store)
    for plain in (secret, previous):
        assert not [text for text in secret_material(plain) if text in dump]
    receiver.secrets = [secret, previous]
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app), hand_turned_worker(app), client_of(app) as http:
        await create_licence(http, app)
        await deliver_until_idle(app, clock)
    # Signed by both: the secret and, within its overlap, the one before it.
    (request,) = receiver.received
    assert request.verified_with == [secret, previous] and receiver.forged == []

    engine = create_engine(store.url)
    try:
        await migrations.downgrade(engine, BEFORE_SEALING, settings=settings)
        async with engine.connect() as connection:
            restored = (
                await connection.execute(
                    sa.select(webhook_endpoints.c.secret, webhook_endpoints.c.previous_secret)
                )
            ).one()
        await migrations.upgrade(engine, settings=settings)
    finally:
        await engine.dispose()
    assert tuple(restored) == (secret, previous)
