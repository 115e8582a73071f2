"""sessions, request log, per-tenant session state

Revision ID: sessions_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "sessions_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("sessions",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sessions_sessions",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_sessions_sessions_tenant_created", "sessions_sessions", ["tenant", "created_at", "id"]
    )
    op.create_table(
        "sessions_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=True),
        sa.Column("tokens_out", sa.Integer(), nullable=True),
        sa.Column("tokens_counted", sa.Boolean(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("upstream_ms", sa.Float(), nullable=True),
        sa.Column("overhead_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_sessions_requests_tenant_created", "sessions_requests", ["tenant", "created_at", "id"]
    )
    op.create_index("ix_sessions_requests_tenant_session", "sessions_requests", ["tenant", "session_id"])
    op.create_table(
        "sessions_tenants",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("auto_mode", sa.Boolean(), nullable=False),
        sa.Column("active_session_id", sa.String(36), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sessions_tenants")
    op.drop_index("ix_sessions_requests_tenant_session", table_name="sessions_requests")
    op.drop_index("ix_sessions_requests_tenant_created", table_name="sessions_requests")
    op.drop_table("sessions_requests")
    op.drop_index("ix_sessions_sessions_tenant_created", table_name="sessions_sessions")
    op.drop_table("sessions_sessions")
