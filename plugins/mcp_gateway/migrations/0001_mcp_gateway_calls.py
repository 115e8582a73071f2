"""MCP gateway tool-call log

Revision ID: mcp_gateway_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "mcp_gateway_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("mcp_gateway",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mcp_gateway_calls",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_mcp_gateway_calls_tenant_created", "mcp_gateway_calls", ["tenant", "created_at", "id"]
    )
    op.create_index("ix_mcp_gateway_calls_tenant_session", "mcp_gateway_calls", ["tenant", "session_id"])


def downgrade() -> None:
    op.drop_index("ix_mcp_gateway_calls_tenant_session", table_name="mcp_gateway_calls")
    op.drop_index("ix_mcp_gateway_calls_tenant_created", table_name="mcp_gateway_calls")
    op.drop_table("mcp_gateway_calls")
