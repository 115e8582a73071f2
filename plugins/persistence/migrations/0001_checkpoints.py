"""checkpoint history

Revision ID: persistence_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "persistence_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("persistence",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "persistence_checkpoints",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("busy", sa.Boolean(), nullable=False),
        sa.Column("wal_frames", sa.Integer(), nullable=False),
        sa.Column("checkpointed_frames", sa.Integer(), nullable=False),
        sa.Column("wal_bytes_before", sa.BigInteger(), nullable=False),
        sa.Column("wal_bytes_after", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_persistence_checkpoints_started", "persistence_checkpoints", ["started_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_persistence_checkpoints_started", table_name="persistence_checkpoints")
    op.drop_table("persistence_checkpoints")
