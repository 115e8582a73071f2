"""compaction: per-session settings and the history of compactions

Revision ID: compaction_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "compaction_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("compaction",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "compaction_sessions",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("auto", sa.Boolean(), nullable=True),
        sa.Column("reserved_tokens", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "compaction_history",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("tokens_before", sa.Integer(), nullable=False),
        sa.Column("tokens_after", sa.Integer(), nullable=False),
        sa.Column("messages_before", sa.Integer(), nullable=False),
        sa.Column("messages_after", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_compaction_history_tenant_session_at", "compaction_history", ["tenant", "session_id", "at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_compaction_history_tenant_session_at", table_name="compaction_history")
    op.drop_table("compaction_history")
    op.drop_table("compaction_sessions")
