"""memory index: items with vectors, FTS5 keyword index, partition sequence numbers, meta

Revision ID: sqlite_index_0001
Revises:
Create Date: 2026-11-23
"""

import uuid
from collections.abc import Sequence

from alembic import op

revision: str = "sqlite_index_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("sqlite_index",)
depends_on: str | Sequence[str] | None = None

STATEMENTS = (
    # AUTOINCREMENT: row ids are never reused, so the in-memory index can key on them.
    """CREATE TABLE memidx_items (
        rowid INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        seq INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        user_id TEXT,
        agent_id TEXT,
        session_id TEXT,
        occurred_at REAL,
        metadata TEXT,
        text TEXT NOT NULL,
        vector_text TEXT
    )""",
    # Vectors apart from the items: item rows stay small, so keyword-search joins and id
    # lookups read few pages; the float32 vector is read only for exact re-scoring.
    "CREATE TABLE memidx_vectors (rowid INTEGER PRIMARY KEY, vector BLOB NOT NULL)",
    "CREATE UNIQUE INDEX ux_memidx_items_key ON memidx_items (tenant, kind, id)",
    "CREATE INDEX ix_memidx_items_seq ON memidx_items (tenant, kind, seq)",
    """CREATE VIRTUAL TABLE memidx_fts USING fts5(
        text, content='memidx_items', content_rowid='rowid', tokenize='porter unicode61'
    )""",
    """CREATE TRIGGER memidx_items_ai AFTER INSERT ON memidx_items BEGIN
        INSERT INTO memidx_fts(rowid, text) VALUES (new.rowid, new.text);
    END""",
    """CREATE TRIGGER memidx_items_ad AFTER DELETE ON memidx_items BEGIN
        INSERT INTO memidx_fts(memidx_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    END""",
    """CREATE TRIGGER memidx_items_au AFTER UPDATE OF text ON memidx_items BEGIN
        INSERT INTO memidx_fts(memidx_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        INSERT INTO memidx_fts(rowid, text) VALUES (new.rowid, new.text);
    END""",
    """CREATE TABLE memidx_partitions (
        tenant TEXT NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (tenant, kind)
    )""",
    "CREATE TABLE memidx_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def upgrade() -> None:
    # The index tables exist only where this backend serves (a PostgreSQL database keeps its
    # index in pgvector columns of another backend).
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in STATEMENTS:
        op.execute(statement)
    op.execute(f"INSERT INTO memidx_meta (key, value) VALUES ('store_id', '{uuid.uuid4()}')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in ("memidx_meta", "memidx_partitions", "memidx_fts", "memidx_vectors", "memidx_items"):
        op.execute(f"DROP TABLE IF EXISTS {name}")
