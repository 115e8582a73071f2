"""memory bridge: memory modes per session

Revision ID: memory_bridge_0002
Revises: memory_bridge_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "memory_bridge_0002"
down_revision: str | Sequence[str] | None = "memory_bridge_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "memory_bridge_session_modes",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("modes", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("memory_bridge_session_modes")
