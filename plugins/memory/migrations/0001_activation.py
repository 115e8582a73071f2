"""memory activation: importance and access history per memory item

Revision ID: memory_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "memory_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("memory",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "memory_activation",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("access_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_accessed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("memory_activation")
