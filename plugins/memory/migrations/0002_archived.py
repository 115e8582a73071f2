"""memory activation: archived_at (decayed memories are archived, not deleted)

Revision ID: memory_0002
Revises: memory_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "memory_0002"
down_revision: str | Sequence[str] | None = "memory_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("memory_activation") as batch:
        batch.add_column(sa.Column("archived_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("memory_activation") as batch:
        batch.drop_column("archived_at")
