"""Releases per product and channel; signature feed versions and their deltas.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)
URL_LENGTH = 2048


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("published_at", Timestamp, nullable=False),
        sa.Column("url", sa.String(URL_LENGTH), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("notes_url", sa.String(URL_LENGTH), nullable=True),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("min_from_version", sa.String(32), nullable=True),
        sa.Column("rollout_percent", sa.Integer(), nullable=False),
        sa.Column("yanked_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint(
            "rollout_percent BETWEEN 0 AND 100", name=op.f("ck_releases_rollout_percent")
        ),
        sa.CheckConstraint("size >= 0", name=op.f("ck_releases_size")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_releases")),
        sa.UniqueConstraint(
            "product", "channel", "version", name=op.f("uq_releases_product_channel_version")
        ),
    )
    op.create_index(op.f("ix_releases_created_at_id"), "releases", ["created_at", "id"])

    op.create_table(
        "feed_versions",
        sa.Column("feed", sa.String(32), nullable=False),
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("url", sa.String(URL_LENGTH), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("min_product_version", sa.String(32), nullable=True),
        sa.Column("published_at", Timestamp, nullable=False),
        sa.CheckConstraint("size >= 0", name=op.f("ck_feed_versions_size")),
        sa.PrimaryKeyConstraint("feed", "version", name=op.f("pk_feed_versions")),
    )

    op.create_table(
        "feed_deltas",
        sa.Column("feed", sa.String(32), nullable=False),
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("from_version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("url", sa.String(URL_LENGTH), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("from_version < version", name=op.f("ck_feed_deltas_from_version")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_feed_deltas_size")),
        sa.ForeignKeyConstraint(
            ["feed", "version"],
            ["feed_versions.feed", "feed_versions.version"],
            name=op.f("fk_feed_deltas_feed_feed_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("feed", "version", "from_version", name=op.f("pk_feed_deltas")),
    )


def downgrade() -> None:
    op.drop_table("feed_deltas")
    op.drop_table("feed_versions")
    op.drop_index(op.f("ix_releases_created_at_id"), table_name="releases")
    op.drop_table("releases")
