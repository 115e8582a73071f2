"""consolidation: per-tenant progress and tool-sequence patterns

Revision ID: consolidation_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "consolidation_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("consolidation",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consolidation_tenants",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("watermark", UTCDateTime(), nullable=True),
        sa.Column("resume_cursor", sa.Text(), nullable=True),
        sa.Column("pass_top", UTCDateTime(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_run_at", UTCDateTime(), nullable=True),
        sa.Column("last_result", sa.JSON(), nullable=True),
    )
    op.create_table(
        "consolidation_patterns",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("signature", sa.String(512), primary_key=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("occurrences", sa.JSON(), nullable=False),
        sa.Column("sessions", sa.JSON(), nullable=False),
        sa.Column("support", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.String(36), nullable=True),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consolidation_patterns")
    op.drop_table("consolidation_tenants")
