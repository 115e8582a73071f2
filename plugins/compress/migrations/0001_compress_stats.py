"""compress: savings per session and source

Revision ID: compress_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "compress_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("compress",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "compress_stats",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("tokens_before", sa.Integer(), nullable=False),
        sa.Column("tokens_after", sa.Integer(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("compress_stats")
