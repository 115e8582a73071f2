"""sanitizer: masks (sealed originals), their sessions, per-tenant switch, audit log

Revision ID: sanitizer_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "sanitizer_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("sanitizer",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sanitizer_masks",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("content_hash", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_sanitizer_masks_tenant_last_seen", "sanitizer_masks", ["tenant", "last_seen_at", "content_hash"]
    )
    op.create_table(
        "sanitizer_mask_sessions",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("content_hash", sa.String(16), primary_key=True),
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "sanitizer_tenants",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=True),
    )
    op.create_table(
        "sanitizer_audit",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("detail", sa.String(200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_sanitizer_audit_tenant_at", "sanitizer_audit", ["tenant", "at"])


def downgrade() -> None:
    op.drop_index("ix_sanitizer_audit_tenant_at", table_name="sanitizer_audit")
    op.drop_table("sanitizer_audit")
    op.drop_table("sanitizer_tenants")
    op.drop_table("sanitizer_mask_sessions")
    op.drop_index("ix_sanitizer_masks_tenant_last_seen", table_name="sanitizer_masks")
    op.drop_table("sanitizer_masks")
