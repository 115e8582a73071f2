"""episodes

Revision ID: episodic_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "episodic_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("episodic",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "episodic_episodes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("agent_id", sa.String(128), nullable=True),
        sa.Column("actor", sa.String(128), nullable=True),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_episodic_episodes_tenant_occurred", "episodic_episodes", ["tenant", "occurred_at", "id"]
    )
    op.create_index(
        "ix_episodic_episodes_tenant_session", "episodic_episodes", ["tenant", "session_id", "occurred_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_episodic_episodes_tenant_session", table_name="episodic_episodes")
    op.drop_index("ix_episodic_episodes_tenant_occurred", table_name="episodic_episodes")
    op.drop_table("episodic_episodes")
