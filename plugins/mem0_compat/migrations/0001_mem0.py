"""mem0 memories, history and per-tenant configuration

Revision ID: mem0_compat_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "mem0_compat_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("mem0_compat",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mem0_memories",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("memory", sa.Text(), nullable=False),
        sa.Column("hash", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("agent_id", sa.String(128), nullable=True),
        sa.Column("run_id", sa.String(128), nullable=True),
        sa.Column("app_id", sa.String(128), nullable=True),
        sa.Column("actor_id", sa.String(128), nullable=True),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("immutable", sa.Boolean(), nullable=False),
        sa.Column("expiration_date", sa.Date(), nullable=True),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_mem0_memories_tenant_created", "mem0_memories", ["tenant", "created_at", "id"])
    op.create_index("ix_mem0_memories_tenant_user", "mem0_memories", ["tenant", "user_id"])
    op.create_index("ix_mem0_memories_tenant_hash", "mem0_memories", ["tenant", "hash"])
    op.create_table(
        "mem0_history",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("memory_id", sa.String(36), nullable=False),
        sa.Column("old_memory", sa.Text(), nullable=True),
        sa.Column("new_memory", sa.Text(), nullable=True),
        sa.Column("event", sa.String(8), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("actor_id", sa.String(128), nullable=True),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("input", sa.JSON(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_mem0_history_tenant_memory", "mem0_history", ["tenant", "memory_id", "created_at"])
    op.create_table(
        "mem0_config",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mem0_config")
    op.drop_index("ix_mem0_history_tenant_memory", table_name="mem0_history")
    op.drop_table("mem0_history")
    op.drop_index("ix_mem0_memories_tenant_hash", table_name="mem0_memories")
    op.drop_index("ix_mem0_memories_tenant_user", table_name="mem0_memories")
    op.drop_index("ix_mem0_memories_tenant_created", table_name="mem0_memories")
    op.drop_table("mem0_memories")
