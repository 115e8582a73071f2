"""sequential-thinking thought history

Revision ID: seqthink_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "seqthink_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("mcp_sequential_thinking",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seqthink_thoughts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("session_key", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("thought", sa.Text(), nullable=False),
        sa.Column("thought_number", sa.BigInteger(), nullable=False),
        sa.Column("total_thoughts", sa.BigInteger(), nullable=False),
        sa.Column("next_thought_needed", sa.Boolean(), nullable=False),
        sa.Column("is_revision", sa.Boolean(), nullable=True),
        sa.Column("revises_thought", sa.BigInteger(), nullable=True),
        sa.Column("branch_from_thought", sa.BigInteger(), nullable=True),
        sa.Column("branch_id", sa.String(200), nullable=True),
        sa.Column("needs_more_thoughts", sa.Boolean(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_seqthink_thoughts_session",
        "seqthink_thoughts",
        ["tenant", "session_key", "position"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_seqthink_thoughts_session", table_name="seqthink_thoughts")
    op.drop_table("seqthink_thoughts")
