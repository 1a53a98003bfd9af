"""Webhook secrets sealed at rest: existing secrets sealed under the key from outside the store.

Revision ID: 0013_i18_sealed_webhook_secrets
Revises: 0012_i18_webhooks
Create Date: 2026-11-25
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

from app.core.settings import Settings

revision: str = "0013_i18_sealed_webhook_secrets"
down_revision: str | None = "0012_i18_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

endpoints = sa.table(
    "webhook_endpoints",
    sa.column("id", sa.Uuid()),
    sa.column("secret", sa.String()),
    sa.column("previous_secret", sa.String()),
)


def _convert(change: Callable[..., str]) -> None:
    """Apply `change(secrets, endpoint_id, value)` to both secrets of every endpoint. The key
    is read only when there is something to change: an empty store migrates without it."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(endpoints.c.id, endpoints.c.secret, endpoints.c.previous_secret)
    ).all()
    if not rows:
        return
    # Seals the way the running server does (the sealed form is versioned, "v1.").
    from app.events.signing import EndpointSecrets

    settings = context.config.attributes.get("settings") or Settings()
    secrets = EndpointSecrets(settings)
    for endpoint_id, secret, previous in rows:
        connection.execute(
            endpoints.update()
            .where(endpoints.c.id == endpoint_id)
            .values(
                secret=change(secrets, endpoint_id, secret),
                previous_secret=None
                if previous is None
                else change(secrets, endpoint_id, previous),
            )
        )


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        for name, nullable in (("secret", False), ("previous_secret", True)):
            batch.alter_column(
                name,
                existing_type=sa.String(length=64),
                type_=sa.String(length=128),
                existing_nullable=nullable,
            )
    _convert(lambda secrets, endpoint_id, value: secrets.seal(endpoint_id, value))
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", new_column_name="secret_sealed")
        batch.alter_column("previous_secret", new_column_name="previous_secret_sealed")


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret_sealed", new_column_name="secret")
        batch.alter_column("previous_secret_sealed", new_column_name="previous_secret")
    _convert(lambda secrets, endpoint_id, value: secrets.open(endpoint_id, value))
    with op.batch_alter_table("webhook_endpoints") as batch:
        for name, nullable in (("secret", False), ("previous_secret", True)):
            batch.alter_column(
                name,
                existing_type=sa.String(length=128),
                type_=sa.String(length=64),
                existing_nullable=nullable,
            )
