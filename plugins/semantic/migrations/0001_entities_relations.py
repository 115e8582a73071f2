"""entity versions (bi-temporal) and relations

Revision ID: semantic_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mnemogate.core.db import UTCDateTime

revision: str = "semantic_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("semantic",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "semantic_entity_versions",
        sa.Column("version_id", sa.String(36), primary_key=True),
        sa.Column("entity_id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("agent_id", sa.String(128), nullable=True),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_to", UTCDateTime(), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("superseded_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("tenant", "entity_id", "version", name="ux_semantic_entity_versions"),
    )
    op.create_index(
        "ix_semantic_entity_versions_current",
        "semantic_entity_versions",
        ["tenant", "superseded_at", "recorded_at", "entity_id"],
    )
    op.create_table(
        "semantic_relations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(36), nullable=False),
        sa.Column("target_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("activations", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("tenant", "source_id", "target_id", "type", name="ux_semantic_relations"),
    )
    op.create_index("ix_semantic_relations_source", "semantic_relations", ["tenant", "source_id"])
    op.create_index("ix_semantic_relations_target", "semantic_relations", ["tenant", "target_id"])


def downgrade() -> None:
    op.drop_table("semantic_relations")
    op.drop_index("ix_semantic_entity_versions_current", table_name="semantic_entity_versions")
    op.drop_table("semantic_entity_versions")
