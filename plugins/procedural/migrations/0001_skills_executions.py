"""skills and their executions

Revision ID: procedural_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "procedural_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("procedural",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "procedural_skills",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("agent_id", sa.String(128), nullable=True),
        sa.Column("executions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("successes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("total_duration_ms", sa.Float(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_procedural_skills_tenant_created", "procedural_skills", ["tenant", "created_at", "id"]
    )
    op.create_table(
        "procedural_executions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("skill_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("output", sa.JSON(), nullable=True),
    )
    op.create_index(
        "ix_procedural_executions_skill", "procedural_executions", ["tenant", "skill_id", "started_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_procedural_executions_skill", table_name="procedural_executions")
    op.drop_table("procedural_executions")
    op.drop_index("ix_procedural_skills_tenant_created", table_name="procedural_skills")
    op.drop_table("procedural_skills")
