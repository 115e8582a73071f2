"""memory bridge: the log of memories injected into gateway requests

Revision ID: memory_bridge_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "memory_bridge_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("memory_bridge",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "memory_bridge_injections",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("memories", sa.JSON(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_memory_bridge_injections_session",
        "memory_bridge_injections",
        ["tenant", "session_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("memory_bridge_injections")
