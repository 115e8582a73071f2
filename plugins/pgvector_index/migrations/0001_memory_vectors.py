"""memory index on PostgreSQL: items with a pgvector column and a tsvector column, meta

Revision ID: pgvector_index_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from sqlalchemy import text

from alembic import op

revision: str = "pgvector_index_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("pgvector_index",)
depends_on: str | Sequence[str] | None = None

MISSING = (
    "the PostgreSQL server has no pgvector extension: install it (Debian/Ubuntu: "
    "apt-get install postgresql-<version>-pgvector, or build it from source as .ci/run does), "
    "then restart mnemogate"
)

STATEMENTS = (
    # The column has no fixed dimension: each embedder dimension in use gets its own partial HNSW
    # index over `embedding::vector(dim)` (created on its first write), so a store can be
    # re-embedded with another model in place.
    """CREATE TABLE memvec_items (
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        user_id TEXT,
        agent_id TEXT,
        session_id TEXT,
        occurred_at TIMESTAMPTZ,
        metadata JSONB,
        text TEXT NOT NULL,
        vector_text TEXT,
        dim INTEGER,
        embedding vector,
        search tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED,
        PRIMARY KEY (tenant, kind, id)
    )""",
    "CREATE INDEX ix_memvec_items_search ON memvec_items USING gin (search)",
    "CREATE INDEX ix_memvec_items_metadata ON memvec_items USING gin (metadata jsonb_path_ops)",
    "CREATE TABLE memvec_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def upgrade() -> None:
    # The index tables exist only where this backend serves (SQLite keeps its index in the
    # sqlite_index backend's tables).
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if bind.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).scalar() is None:
        raise RuntimeError(MISSING)
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in ("memvec_meta", "memvec_items"):
        op.execute(f"DROP TABLE IF EXISTS {name}")
