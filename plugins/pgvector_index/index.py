"""``PgvectorMemoryIndex``: the ``MemoryIndex`` of a PostgreSQL database.

Everything lives in ``memvec_items``, written in the caller's transaction: the item's filter
attributes, its text (a generated tsvector column with a GIN index serves keyword search) and
its vector in a pgvector column. Each vector dimension has a partial HNSW index (cosine) over
``embedding::vector(dim)``. Searches are single SQL statements with the tenant, memory kind and
filters in their WHERE clause; with filters, HNSW scans iteratively until it has ``k`` matches.
No state is kept in memory, so a write on one instance is found by every instance at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, bindparam, event, text
from sqlalchemy.ext.asyncio import AsyncSession

from mnemogate.core.contracts import Hit, IndexedText, IndexFilters, IndexItem
from mnemogate.core.db import Database
from mnemogate.core.errors import BadRequest, StartupError
from mnemogate.plugins.pgvector_index.settings import PgvectorIndexSettings

if TYPE_CHECKING:
    import numpy as np

MISSING_EXTENSION = (
    "the PostgreSQL database has no pgvector extension (CREATE EXTENSION vector): install pgvector "
    "on the server (Debian/Ubuntu: apt-get install postgresql-<version>-pgvector, or build it from "
    "source as .ci/run does) and restart mnemogate"
)
HNSW_PREFIX = "ix_memvec_items_hnsw_"
# Serialises the creation of a dimension's HNSW index between instances.
_HNSW_LOCK = int.from_bytes(hashlib.sha256(b"mnemogate-pgvector-hnsw").digest()[:8], "big", signed=True)
_PENDING_DIMS = "mnemogate.pgvector_index.pending_dims"
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_WORDS = 32
FILTER_COLUMNS = ("user_id", "agent_id", "session_id")

_UPSERT = text(
    """INSERT INTO memvec_items
        (tenant, kind, id, user_id, agent_id, session_id, occurred_at, metadata, text, vector_text, dim,
         embedding)
    VALUES (:tenant, :kind, :id, :user_id, :agent_id, :session_id, :occurred_at, CAST(:metadata AS jsonb),
        :text, :vector_text, :dim, CAST(:embedding AS vector))
    ON CONFLICT (tenant, kind, id) DO UPDATE SET
        user_id = excluded.user_id, agent_id = excluded.agent_id, session_id = excluded.session_id,
        occurred_at = excluded.occurred_at, metadata = excluded.metadata, text = excluded.text,
        vector_text = excluded.vector_text, dim = excluded.dim, embedding = excluded.embedding"""
).bindparams(bindparam("occurred_at", type_=DateTime(timezone=True)))
_DELETE = text("DELETE FROM memvec_items WHERE tenant = :tenant AND kind = :kind AND id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_SET_VECTOR = text(
    """UPDATE memvec_items SET dim = :dim, embedding = CAST(:embedding AS vector)
    WHERE tenant = :tenant AND kind = :kind AND id = :id"""
)
_VECTORS_OF = text(
    """SELECT id, CAST(embedding AS real[]) FROM memvec_items
    WHERE tenant = :tenant AND kind = :kind AND id IN :ids AND embedding IS NOT NULL"""
).bindparams(bindparam("ids", expanding=True))
VECTORS_PER_READ = 1000
_SEARCH_SETTINGS = text(
    "SELECT set_config('hnsw.ef_search', :ef_search, true), "
    "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
    "set_config('hnsw.max_scan_tuples', :max_scan_tuples, true)"
)


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form of a float32 vector."""
    import numpy as np

    return "[" + ",".join(map(str, np.asarray(vector, dtype=np.float32).reshape(-1).tolist())) + "]"


def filter_clauses(filters: IndexFilters, params: dict[str, Any]) -> list[str]:
    """SQL conditions (with their parameters) for the filters of a search."""
    clauses = []
    for name in FILTER_COLUMNS:
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"{name} = :f_{name}")
            params[f"f_{name}"] = value
    if filters.since is not None:
        clauses.append("occurred_at >= :f_since")
        params["f_since"] = filters.since
    if filters.until is not None:
        clauses.append("occurred_at < :f_until")
        params["f_until"] = filters.until
    if filters.metadata:
        for key, value in filters.metadata.items():
            if not isinstance(value, str | int | float | bool):
                raise BadRequest(
                    f"metadata filter {key!r}: only strings, numbers and booleans can be matched"
                )
        # Containment of the scalar pairs is exact equality of each key (GIN jsonb_path_ops).
        clauses.append("metadata @> CAST(:f_metadata AS jsonb)")
        params["f_metadata"] = json.dumps(filters.metadata)
    return clauses


def _typed(statement: Any, params: dict[str, Any]) -> Any:
    for name in ("f_since", "f_until"):
        if name in params:
            statement = statement.bindparams(bindparam(name, type_=DateTime(timezone=True)))
    return statement


class PgvectorMemoryIndex:
    def __init__(self, db: Database, settings: PgvectorIndexSettings) -> None:
        self.db = db
        self.settings = settings
        self.hnsw_dims: set[int] = set()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        async with self.db.read() as session:
            installed = (
                await session.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'vector'"))
            ).scalar()
            if installed is None:
                raise StartupError(MISSING_EXTENSION)
            names = (
                await session.execute(
                    text("SELECT indexname FROM pg_indexes WHERE tablename = 'memvec_items'")
                )
            ).scalars()
        self.hnsw_dims = {int(n[len(HNSW_PREFIX) :]) for n in names if n.startswith(HNSW_PREFIX)}

    async def close(self) -> None:
        return None

    async def reset(self) -> None:
        # The database was replaced (a restore): which HNSW indexes exist is to be found again.
        self.hnsw_dims.clear()

    # -- writes (in the caller's transaction) --------------------------------------------------

    async def upsert(self, session: AsyncSession, tenant: str, kind: str, items: Sequence[IndexItem]) -> None:
        if not items:
            return
        rows = []
        for item in items:
            attrs = item.attrs
            metadata = attrs.get("metadata")
            vector = item.vector
            rows.append(
                {
                    "tenant": tenant,
                    "kind": kind,
                    "id": item.id,
                    "user_id": attrs.get("user_id"),
                    "agent_id": attrs.get("agent_id"),
                    "session_id": attrs.get("session_id"),
                    "occurred_at": attrs.get("occurred_at"),
                    "metadata": json.dumps(metadata) if metadata else None,
                    "text": item.text,
                    "vector_text": item.vector_text,
                    "dim": None if vector is None else int(vector.size),
                    "embedding": None if vector is None else vector_literal(vector),
                }
            )
        for dim in {row["dim"] for row in rows if row["dim"] is not None}:
            await self._ensure_hnsw(session, dim)
        await session.execute(_UPSERT, rows)

    async def delete(self, session: AsyncSession, tenant: str, kind: str, ids: Sequence[str]) -> None:
        if ids:
            await session.execute(_DELETE, {"tenant": tenant, "kind": kind, "ids": list(ids)})

    async def _ensure_hnsw(self, session: AsyncSession, dim: int) -> None:
        """The HNSW index of vectors with ``dim`` dimensions, created in the writer's transaction
        (other instances wait on an advisory lock, then find it) the first time one is written."""
        if dim in self.hnsw_dims:
            return
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _HNSW_LOCK})
        name = f"{HNSW_PREFIX}{dim}"
        exists = (await session.execute(text("SELECT to_regclass(:name)"), {"name": name})).scalar()
        if exists is not None:
            self.hnsw_dims.add(dim)
            return
        await session.execute(
            text(
                f"CREATE INDEX {name} ON memvec_items "
                f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
                f"WITH (m = {self.settings.hnsw_m}, ef_construction = {self.settings.hnsw_ef_construction}) "
                f"WHERE dim = {dim}"
            )
        )
        # Known only once committed: a rolled-back transaction takes the index with it.
        pending: set[int] | None = session.info.get(_PENDING_DIMS)
        if pending is None:
            pending = session.info[_PENDING_DIMS] = set()
            sync = session.sync_session
            event.listen(sync, "after_commit", lambda s: self.hnsw_dims.update(s.info.pop(_PENDING_DIMS, ())))
            event.listen(sync, "after_rollback", lambda s: s.info.pop(_PENDING_DIMS, None))
        pending.add(dim)

    async def get_meta(self, key: str) -> str | None:
        async with self.db.read() as session:
            return (
                await session.execute(text("SELECT value FROM memvec_meta WHERE key = :k"), {"k": key})
            ).scalar()

    async def set_meta(self, session: AsyncSession, key: str, value: str) -> None:
        await session.execute(
            text(
                "INSERT INTO memvec_meta (key, value) VALUES (:k, :v) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            {"k": key, "v": value},
        )

    async def count(self, tenant: str | None = None, kind: str | None = None) -> int:
        clauses, params = ["true"], {}
        if tenant is not None:
            clauses.append("tenant = :tenant")
            params["tenant"] = tenant
        if kind is not None:
            clauses.append("kind = :kind")
            params["kind"] = kind
        async with self.db.read() as session:
            sql = f"SELECT count(*) FROM memvec_items WHERE {' AND '.join(clauses)}"
            return int((await session.execute(text(sql), params)).scalar_one())

    async def texts(self, *, batch: int = 256) -> AsyncIterator[list[IndexedText]]:
        last = ("", "", "")
        while True:
            async with self.db.read() as session:
                rows = (
                    await session.execute(
                        text(
                            "SELECT tenant, kind, id, coalesce(vector_text, text) FROM memvec_items "
                            "WHERE (tenant, kind, id) > (:tenant, :kind, :id) "
                            "ORDER BY tenant, kind, id LIMIT :n"
                        ),
                        {"tenant": last[0], "kind": last[1], "id": last[2], "n": batch},
                    )
                ).all()
            if not rows:
                return
            last = rows[-1][:3]
            yield [IndexedText(tenant=r[0], kind=r[1], id=r[2], text=r[3]) for r in rows]

    async def vectors(self, tenant: str, kind: str, ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The stored vectors of those of ``ids`` that have one, as (ids, float32 rows)."""
        import numpy as np

        found: list[str] = []
        rows: list[list[float]] = []
        for start in range(0, len(ids), VECTORS_PER_READ):
            async with self.db.read() as session:
                result = await session.execute(
                    _VECTORS_OF,
                    {"tenant": tenant, "kind": kind, "ids": list(ids[start : start + VECTORS_PER_READ])},
                )
                for item_id, values in result.all():
                    found.append(item_id)
                    rows.append(values)
        widths = {len(row) for row in rows}
        if not rows or len(widths) > 1:  # vectors of two embedders are never projected together
            return [], np.zeros((0, 0), dtype=np.float32)
        return found, np.asarray(rows, dtype=np.float32)

    async def set_vectors(
        self, session: AsyncSession, items: Sequence[IndexedText], vectors: np.ndarray
    ) -> None:
        rows = [
            {
                "tenant": item.tenant,
                "kind": item.kind,
                "id": item.id,
                "dim": int(vector.size),
                "embedding": vector_literal(vector),
            }
            for item, vector in zip(items, vectors, strict=True)
        ]
        for dim in {row["dim"] for row in rows}:
            await self._ensure_hnsw(session, dim)
        if rows:
            await session.execute(_SET_VECTOR, rows)

    # -- searches ------------------------------------------------------------------------------

    async def vector_search(
        self, tenant: str, kind: str, vector: np.ndarray, *, k: int, filters: IndexFilters | None = None
    ) -> list[Hit]:
        if k <= 0:
            return []
        dim = int(vector.size)
        params: dict[str, Any] = {"tenant": tenant, "kind": kind, "query": vector_literal(vector), "k": k}
        clauses = ["tenant = :tenant", "kind = :kind", f"dim = {dim}"]
        clauses += filter_clauses(filters or IndexFilters(), params)
        # The ORDER BY expression is the one the dimension's partial HNSW index is built on.
        # Relaxed iterative scans may return neighbours slightly out of order: sort once more.
        sql = (
            "WITH hits AS MATERIALIZED ("
            f"SELECT id, embedding::vector({dim}) <=> CAST(:query AS vector({dim})) AS distance "
            f"FROM memvec_items WHERE {' AND '.join(clauses)} ORDER BY distance LIMIT :k"
            ") SELECT id, distance FROM hits ORDER BY distance"
        )
        async with self.db.read() as session:
            await session.execute(
                _SEARCH_SETTINGS,
                {
                    "ef_search": str(max(self.settings.ef_search, min(k, 1000))),
                    "max_scan_tuples": str(self.settings.max_scan_tuples),
                },
            )
            rows = (await session.execute(_typed(text(sql), params), params)).all()
        return [Hit(id=r[0], score=1.0 - float(r[1]), parts={"vector": 1.0 - float(r[1])}) for r in rows]

    async def text_search(
        self, tenant: str, kind: str, query: str, *, k: int, filters: IndexFilters | None = None
    ) -> list[Hit]:
        # Each word becomes its own tsquery (so user input is never tsquery syntax), OR-ed
        # together; the configuration's stemming and stop words apply to each.
        words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))[:MAX_QUERY_WORDS]
        if not words or k <= 0:
            return []
        async with self.db.read() as session:
            if len(words) > 1:
                words = await self._rarer_words(session, tenant, kind, words)
            params: dict[str, Any] = {"tenant": tenant, "kind": kind, "k": k}
            params.update({f"w{i}": word for i, word in enumerate(words)})
            tsquery = " || ".join(f"plainto_tsquery('english', :w{i})" for i in range(len(words)))
            clauses = ["tenant = :tenant", "kind = :kind", "search @@ q.query"]
            clauses += filter_clauses(filters or IndexFilters(), params)
            sql = (
                "SELECT id, ts_rank_cd(search, q.query) AS rank "
                f"FROM memvec_items, (SELECT {tsquery} AS query) q "
                f"WHERE {' AND '.join(clauses)} ORDER BY rank DESC, id LIMIT :k"
            )
            rows = (await session.execute(_typed(text(sql), params), params)).all()
        return [Hit(id=r[0], score=float(r[1]), parts={"keyword": float(r[1])}) for r in rows]

    async def _rarer_words(
        self, session: AsyncSession, tenant: str, kind: str, words: list[str]
    ) -> list[str]:
        """Drop words found in at least ``common_term_docs`` of the tenant's items when rarer ones
        remain: they weigh little in the ranking, and ranking each of their items is what makes
        a keyword search slow in a large store. Counting stops at the cap."""
        params: dict[str, Any] = {"tenant": tenant, "kind": kind, "cap": self.settings.common_term_docs}
        counts = []
        for i, word in enumerate(words):
            params[f"w{i}"] = word
            counts.append(
                "(SELECT count(*) FROM (SELECT 1 FROM memvec_items WHERE tenant = :tenant AND kind = :kind "
                f"AND search @@ plainto_tsquery('english', :w{i}) LIMIT :cap) c)"
            )
        found = (await session.execute(text(f"SELECT {', '.join(counts)}"), params)).one()
        rarer = [
            word for word, count in zip(words, found, strict=True) if count < self.settings.common_term_docs
        ]
        return rarer or words
