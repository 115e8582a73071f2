"""imported Cline tasks and their API requests

Revision ID: cline_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "cline_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("cline",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cline_tasks",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("task_id", sa.String(128), primary_key=True),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("episodes", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_cline_tasks_imported", "cline_tasks", ["tenant", "imported_at"])
    op.create_table(
        "cline_requests",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("task_id", sa.String(128), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("tokens_in", sa.BigInteger(), nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), nullable=False),
        sa.Column("cache_writes", sa.BigInteger(), nullable=False),
        sa.Column("cache_reads", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
    )
    op.create_index("ix_cline_requests_day", "cline_requests", ["tenant", "day"])


def downgrade() -> None:
    op.drop_index("ix_cline_requests_day", table_name="cline_requests")
    op.drop_table("cline_requests")
    op.drop_index("ix_cline_tasks_imported", table_name="cline_tasks")
    op.drop_table("cline_tasks")
