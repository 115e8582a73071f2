"""``SqliteMemoryIndex``: the ``MemoryIndex`` of an SQLite database.

The database is the truth: every item's row (text, filter attributes) lives in ``memidx_items``
and its float32 vector in ``memidx_vectors``, both written in the caller's transaction; FTS5
follows the rows through triggers, and every write bumps the (tenant, kind) partition's
sequence number. The in-memory partitions are derived: loaded on first search (from a snapshot
when one is valid, else from the rows), brought up to date after each commit, and checked
against the sequence number before every search, so writes by another process (a second
worker) are seen too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, event, text
from sqlalchemy.ext.asyncio import AsyncSession

from mnemogate.core.contracts import Hit, IndexedText, IndexFilters, IndexItem
from mnemogate.core.db import Database
from mnemogate.core.errors import BadRequest
from mnemogate.plugins.sqlite_index.reader import Reader, fetch, marks
from mnemogate.plugins.sqlite_index.settings import SqliteIndexSettings

if TYPE_CHECKING:
    import numpy as np

    from mnemogate.plugins.sqlite_index.partition import Changes, Partition

log = logging.getLogger("mnemogate.sqlite_index")

CATCH_UP_BATCH = 20_000
_PENDING = "mnemogate.sqlite_index.pending"
_WRITTEN_CHANGES = "mnemogate.sqlite_index.written"
_WORD = re.compile(r"\w+", re.UNICODE)
# Words too common to help keyword ranking; dropping them keeps FTS5 from scoring most rows.
_STOPWORD_TEXT = (
    "a an and are as at be been but by did do does for from had has have he her him his how i "
    "if in into is it its me my of on or our she so than that the their them then there these "
    "they this to was we were what when where which who whom why will with would you your"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split(" "))

# Written through the driver directly: at thousands of rows per batch, SQLAlchemy's per-row
# parameter processing would cost more than SQLite's work. Many rows per statement, not one
# statement per row (executemany): each statement whose trigger writes to FTS5 opens a
# savepoint, at which FTS5 flushes its pending terms, so row-at-a-time inserts write and merge
# many small segments. Measured on 1,000-row batches: the items insert took a third as long.
_UPSERT = """INSERT INTO memidx_items
        (id, tenant, kind, seq, deleted, user_id, agent_id, session_id, occurred_at, metadata, text,
         vector_text)
    VALUES {}
    ON CONFLICT (tenant, kind, id) DO UPDATE SET
        seq = excluded.seq, deleted = 0, user_id = excluded.user_id, agent_id = excluded.agent_id,
        session_id = excluded.session_id, occurred_at = excluded.occurred_at,
        metadata = excluded.metadata, text = excluded.text, vector_text = excluded.vector_text"""
_UPSERT_ROW = "(?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)"
ROWS_PER_UPSERT = 500  # 11 parameters a row: within SQLite's 32,766 bound parameters
_UPSERT_VECTOR = """INSERT OR REPLACE INTO memidx_vectors (rowid, vector)
    SELECT rowid, ? FROM memidx_items WHERE tenant = ? AND kind = ? AND id = ?"""
_WRITTEN = "SELECT id, rowid FROM memidx_items WHERE tenant = ? AND kind = ? AND seq = ?"
_SET_VECTOR = "INSERT OR REPLACE INTO memidx_vectors (rowid, vector) VALUES (?, ?)"
_DELETE_VECTORS = text(
    """DELETE FROM memidx_vectors WHERE rowid IN
        (SELECT rowid FROM memidx_items WHERE tenant = :tenant AND kind = :kind AND id IN :ids)"""
).bindparams(bindparam("ids", expanding=True))
_DELETE = text(
    """UPDATE memidx_items SET deleted = 1, seq = :seq, text = '', vector_text = NULL, metadata = NULL
    WHERE tenant = :tenant AND kind = :kind AND id IN :ids AND deleted = 0"""
).bindparams(bindparam("ids", expanding=True))
_NEXT_SEQ = text(
    """INSERT INTO memidx_partitions (tenant, kind, seq) VALUES (:tenant, :kind, 1)
    ON CONFLICT (tenant, kind) DO UPDATE SET seq = seq + 1 RETURNING seq"""
)
# Reads (qmark parameters: they run on the reader's connections).
_SEQ = "SELECT seq FROM memidx_partitions WHERE tenant = ? AND kind = ?"
# Keyset over (seq, rowid), which the (tenant, kind, seq) index serves in order.
_CHANGES = """SELECT i.rowid, i.seq, i.deleted, i.user_id, i.agent_id, i.session_id, i.occurred_at, v.vector
    FROM memidx_items i LEFT JOIN memidx_vectors v ON v.rowid = i.rowid
    WHERE i.tenant = ? AND i.kind = ? AND i.seq <= ? AND (i.seq > ? OR (i.seq = ? AND i.rowid > ?))
    ORDER BY i.seq, i.rowid LIMIT ?"""
_VECTORS = "SELECT rowid, vector FROM memidx_vectors WHERE rowid IN ({})"
_IDS = "SELECT rowid, id FROM memidx_items WHERE rowid IN ({})"
# Keyword search without filters: the best matches of the whole full-text index first (FTS5's
# own rank, which is bm25), then their items; see ``text_search``.
_FTS_TOP = "SELECT rowid, rank FROM memidx_fts WHERE memidx_fts MATCH ? ORDER BY rank LIMIT ?"
# Unary plus: the row ids, not the (tenant, kind) indexes, must drive this lookup (with a
# long IN list SQLite would otherwise scan the tenant's whole range of the seq index).
_LIVE_IDS = (
    "SELECT rowid, id FROM memidx_items WHERE rowid IN ({}) AND +tenant = ? AND +kind = ? AND deleted = 0"
)
KEYWORD_OVERFETCH = 4
_VECTORS_OF = """SELECT i.id, v.vector FROM memidx_items i JOIN memidx_vectors v ON v.rowid = i.rowid
    WHERE i.tenant = ? AND i.kind = ? AND i.deleted = 0 AND i.id IN ({})"""
VECTORS_PER_READ = 500
_DIMENSION = """SELECT length(v.vector) FROM memidx_items i JOIN memidx_vectors v ON v.rowid = i.rowid
    WHERE i.tenant = ? AND i.kind = ? LIMIT 1"""


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _vector_bytes(vector: np.ndarray | None) -> bytes | None:
    import numpy as np  # numpy and faiss load on first use: start-up does not pay for them

    return None if vector is None else np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _changes(rows: Sequence[Any]) -> Changes:
    """Columns of catch-up rows (rowid, seq, deleted, user, agent, session, time, vector)."""
    import numpy as np

    from mnemogate.plugins.sqlite_index.partition import Changes

    live = np.array([not r[2] and r[7] is not None for r in rows], dtype=bool)
    blobs = [r[7] for r, alive in zip(rows, live, strict=True) if alive]
    dim = len(blobs[0]) // 4 if blobs else 0
    vectors = np.zeros((len(rows), dim), dtype=np.float32)
    if blobs:
        vectors[live] = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim)
    return Changes(
        rowids=np.array([r[0] for r in rows], dtype=np.int64),
        live=live,
        vectors=vectors,
        occurred=np.array([np.nan if r[6] is None else r[6] for r in rows], dtype=np.float64),
        attributes={
            "user_id": [r[3] for r in rows],
            "agent_id": [r[4] for r in rows],
            "session_id": [r[5] for r in rows],
        },
    )


def _written(items: Sequence[IndexItem], rowids: dict[str, int]) -> Changes:
    """The columns of catch-up rows (see ``_changes``) for items as an upsert wrote them."""
    import numpy as np

    from mnemogate.plugins.sqlite_index.partition import ATTRIBUTE_FIELDS, Changes

    latest = list({item.id: item for item in items}.values())  # an id given twice: the last wins
    live = np.array([item.vector is not None for item in latest], dtype=bool)
    dim = next((len(item.vector) for item in latest if item.vector is not None), 0)
    vectors = np.zeros((len(latest), dim), dtype=np.float32)
    if live.any():
        vectors[live] = np.stack([item.vector for item in latest if item.vector is not None])
    occurred = [_epoch(item.attrs.get("occurred_at")) for item in latest]
    return Changes(
        rowids=np.array([rowids[item.id] for item in latest], dtype=np.int64),
        live=live,
        vectors=vectors,
        occurred=np.array([np.nan if t is None else t for t in occurred], dtype=np.float64),
        attributes={name: [item.attrs.get(name) for item in latest] for name in ATTRIBUTE_FIELDS},
    )


def query_terms(query: str) -> list[str]:
    """The query's words as quoted FTS5 terms (user input is never FTS5 syntax), stop words
    dropped unless nothing else is left."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))
    content = [w for w in words if w not in STOPWORDS] or words
    return [f'"{w}"' for w in content]


def metadata_clause(metadata: dict[str, Any], params: list[Any], column: str = "metadata") -> str:
    clauses = []
    for key, value in sorted(metadata.items()):
        if not isinstance(value, str | int | float | bool):
            raise BadRequest(f"metadata filter {key!r}: only strings, numbers and booleans can be matched")
        params += ["$." + json.dumps(str(key)), int(value) if isinstance(value, bool) else value]
        clauses.append(f"json_extract({column}, ?) = ?")
    return " AND ".join(clauses)


class SqliteMemoryIndex:
    def __init__(self, db: Database, settings: SqliteIndexSettings) -> None:
        self.db = db
        self.settings = settings
        self.partitions: dict[tuple[str, str], Partition] = {}
        self.locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.reader = Reader(db)
        self.snapshot_dir: Path | None = (
            db.path.with_name(db.path.name + ".index") if db.path is not None and settings.snapshots else None
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.to_thread(self.reader.close)
        if self.snapshot_dir is None:
            return
        store_id = await self.get_meta("store_id")
        embedder = await self.get_meta("embedder")
        for (tenant, kind), partition in self.partitions.items():
            if not partition.approximate:
                continue
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            header = {"tenant": tenant, "kind": kind, "store_id": store_id, "embedder": embedder}
            await asyncio.to_thread(partition.save, self._stem(tenant, kind), header)

    async def reset(self) -> None:
        """Forget the in-memory partitions and the snapshots: the database's contents were
        replaced (a restore), and sequence numbers from before mean nothing now. The next
        search of each partition rebuilds it from the rows."""
        for key in list(self.partitions):
            async with self.locks.setdefault(key, asyncio.Lock()):
                self.partitions.pop(key, None)
        if self.snapshot_dir is not None and self.snapshot_dir.exists():
            for path in self.snapshot_dir.iterdir():
                path.unlink(missing_ok=True)

    def _stem(self, tenant: str, kind: str) -> Path:
        assert self.snapshot_dir is not None
        digest = hashlib.sha256(f"{tenant}\0{kind}".encode()).hexdigest()[:24]
        return self.snapshot_dir / digest

    # -- writes (in the caller's transaction) --------------------------------------------------

    async def upsert(self, session: AsyncSession, tenant: str, kind: str, items: Sequence[IndexItem]) -> None:
        if not items:
            return
        seq = (await session.execute(_NEXT_SEQ, {"tenant": tenant, "kind": kind})).scalar_one()
        rows = []
        for item in items:
            attrs = item.attrs
            metadata = attrs.get("metadata")
            rows.append(
                (
                    item.id,
                    tenant,
                    kind,
                    seq,
                    attrs.get("user_id"),
                    attrs.get("agent_id"),
                    attrs.get("session_id"),
                    _epoch(attrs.get("occurred_at")),
                    json.dumps(metadata) if metadata else None,
                    item.text,
                    item.vector_text,
                )
            )
        connection = await session.connection()
        for start in range(0, len(rows), ROWS_PER_UPSERT):
            chunk = rows[start : start + ROWS_PER_UPSERT]
            statement = _UPSERT.format(", ".join([_UPSERT_ROW] * len(chunk)))
            await connection.exec_driver_sql(statement, tuple(value for row in chunk for value in row))
        # This write's sequence number marks exactly its rows: their row ids, in one range read.
        rowids = dict((await connection.exec_driver_sql(_WRITTEN, (tenant, kind, seq))).all())
        vectors = [(rowids[i.id], _vector_bytes(i.vector)) for i in items if i.vector is not None]
        if vectors:
            await connection.exec_driver_sql(_SET_VECTOR, vectors)
        if len(vectors) < len(items):
            unembedded = [i.id for i in items if i.vector is None]
            await session.execute(_DELETE_VECTORS, {"tenant": tenant, "kind": kind, "ids": unembedded})
        changes = _written(items, rowids) if (tenant, kind) in self.partitions else None
        self._refresh_after_commit(session, tenant, kind, (seq, changes))

    async def delete(self, session: AsyncSession, tenant: str, kind: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        seq = (await session.execute(_NEXT_SEQ, {"tenant": tenant, "kind": kind})).scalar_one()
        await session.execute(_DELETE_VECTORS, {"tenant": tenant, "kind": kind, "ids": list(ids)})
        await session.execute(_DELETE, {"tenant": tenant, "kind": kind, "ids": list(ids), "seq": seq})
        self._refresh_after_commit(session, tenant, kind, (seq, None))

    def _refresh_after_commit(
        self, session: AsyncSession, tenant: str, kind: str, written: tuple[int, Changes | None]
    ) -> None:
        """After the commit, the partition applies ``written`` (this write's sequence number and
        rows, None when they must be read back) or catches up from the database."""
        pending: dict[tuple[str, str], list[tuple[int, Changes | None]]] | None = session.info.get(_PENDING)
        if pending is None:
            pending = session.info[_PENDING] = {}
            sync = session.sync_session
            event.listen(sync, "after_commit", self._committed)
            event.listen(sync, "after_rollback", lambda s: s.info.pop(_PENDING, None))
        pending.setdefault((tenant, kind), []).append(written)

    def _committed(self, sync_session: Any) -> None:
        # The in-memory index follows the commit; a search before this task runs catches up
        # by itself (it compares sequence numbers), so nothing is ever missed.
        loop = asyncio.get_running_loop()
        for key, written in sync_session.info.pop(_PENDING, {}).items():
            if key in self.partitions:
                task = loop.create_task(self._refresh(*key, written))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _refresh(self, tenant: str, kind: str, written: list[tuple[int, Changes | None]]) -> None:
        try:
            await self._apply_written(tenant, kind, written)
            await self._partition(tenant, kind)
        except Exception as exc:
            log.warning("index refresh of %s/%s failed: %s", tenant, kind, type(exc).__name__)

    async def _apply_written(self, tenant: str, kind: str, written: list[tuple[int, Changes | None]]) -> None:
        """Apply a committed write's rows as written, without reading them back, as long as the
        partition is exactly at the sequence number before each (nobody else wrote between);
        otherwise the catch-up that follows reads what is missing."""
        async with self.locks.setdefault((tenant, kind), asyncio.Lock()):
            for seq, changes in written:
                partition = self.partitions.get((tenant, kind))
                if partition is None or changes is None or partition.seq != seq - 1:
                    return
                if changes.live.any() and changes.vectors.shape[1] != partition.dim:
                    return
                if len(changes) > 1000 or partition.live + len(changes) > partition.exact_limit:
                    await asyncio.to_thread(partition.apply, changes, seq)
                else:
                    partition.apply(changes, seq)

    async def get_meta(self, key: str) -> str | None:
        async with self.db.read() as session:
            return (
                await session.execute(text("SELECT value FROM memidx_meta WHERE key = :k"), {"k": key})
            ).scalar()

    async def set_meta(self, session: AsyncSession, key: str, value: str) -> None:
        await session.execute(
            text(
                "INSERT INTO memidx_meta (key, value) VALUES (:k, :v) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            {"k": key, "v": value},
        )

    async def count(self, tenant: str | None = None, kind: str | None = None) -> int:
        clauses, params = ["deleted = 0"], {}
        if tenant is not None:
            clauses.append("tenant = :tenant")
            params["tenant"] = tenant
        if kind is not None:
            clauses.append("kind = :kind")
            params["kind"] = kind
        async with self.db.read() as session:
            sql = f"SELECT count(*) FROM memidx_items WHERE {' AND '.join(clauses)}"
            return int((await session.execute(text(sql), params)).scalar_one())

    async def texts(self, *, batch: int = 256) -> AsyncIterator[list[IndexedText]]:
        last = 0
        while True:
            async with self.db.read() as session:
                rows = (
                    await session.execute(
                        text(
                            "SELECT rowid, tenant, kind, id, coalesce(vector_text, text) FROM memidx_items "
                            "WHERE deleted = 0 AND rowid > :last ORDER BY rowid LIMIT :n"
                        ),
                        {"last": last, "n": batch},
                    )
                ).all()
            if not rows:
                return
            last = rows[-1][0]
            yield [IndexedText(tenant=r[1], kind=r[2], id=r[3], text=r[4]) for r in rows]

    async def set_vectors(
        self, session: AsyncSession, items: Sequence[IndexedText], vectors: np.ndarray
    ) -> None:
        by_partition: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for item, vector in zip(items, vectors, strict=True):
            by_partition.setdefault((item.tenant, item.kind), []).append(
                {"tenant": item.tenant, "kind": item.kind, "id": item.id, "vector": _vector_bytes(vector)}
            )
        for (tenant, kind), rows in by_partition.items():
            seq = (await session.execute(_NEXT_SEQ, {"tenant": tenant, "kind": kind})).scalar_one()
            for row in rows:
                row["seq"] = seq
            await session.execute(
                text(
                    "UPDATE memidx_items SET seq = :seq WHERE tenant = :tenant AND kind = :kind AND id = :id"
                ),
                rows,
            )
            connection = await session.connection()
            await connection.exec_driver_sql(
                _UPSERT_VECTOR, [(r["vector"], r["tenant"], r["kind"], r["id"]) for r in rows]
            )
            self._refresh_after_commit(session, tenant, kind, (seq, None))
        if self.snapshot_dir is not None and self.snapshot_dir.exists():
            for path in self.snapshot_dir.iterdir():
                path.unlink()
        self.partitions.clear()

    async def vectors(self, tenant: str, kind: str, ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The stored vectors of those of ``ids`` that have one, as (ids, float32 rows)."""
        import numpy as np

        found: list[str] = []
        blobs: list[bytes] = []
        for start in range(0, len(ids), VECTORS_PER_READ):
            chunk = list(ids[start : start + VECTORS_PER_READ])
            statement = _VECTORS_OF.format(marks(len(chunk)))
            rows = await self.reader.run(lambda c, s=statement, p=(tenant, kind, *chunk): fetch(c, s, p))
            for item_id, blob in rows:
                found.append(item_id)
                blobs.append(blob)
        if not blobs:
            return [], np.zeros((0, 0), dtype=np.float32)
        dim = len(blobs[0]) // 4
        return found, np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim)

    # -- the in-memory partitions --------------------------------------------------------------

    async def _partition(self, tenant: str, kind: str, seq: int | None = None) -> Partition | None:
        """The partition, up to date with the database (or with ``seq``, the sequence number a
        caller just read); None when it has no items yet."""
        key = (tenant, kind)
        if seq is None:
            seq = await self.reader.run(lambda c: self._seq(c, tenant, kind))
        if seq is None:
            return None
        partition = self.partitions.get(key)
        if partition is not None and partition.seq >= seq:
            return partition
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            partition = self.partitions.get(key)
            if partition is None:
                partition = await self._restore(tenant, kind, seq)
                self.partitions[key] = partition
            if partition.seq < seq:
                await self._catch_up(tenant, kind, partition, seq)
        return partition

    def _new_partition(self, dim: int) -> Partition:
        from mnemogate.plugins.sqlite_index.partition import Partition

        return Partition(
            dim,
            exact_limit=self.settings.exact_limit,
            ivf_lists=self.settings.ivf_lists,
            ivf_probes=self.settings.ivf_probes,
        )

    async def _restore(self, tenant: str, kind: str, seq: int) -> Partition:
        dim = await self._dimension(tenant, kind)
        if self.snapshot_dir is not None and self._stem(tenant, kind).with_suffix(".json").exists():
            stem = self._stem(tenant, kind)
            try:
                from mnemogate.plugins.sqlite_index.partition import Partition

                partition, header = await asyncio.to_thread(
                    Partition.load,
                    stem,
                    dim,
                    exact_limit=self.settings.exact_limit,
                    ivf_lists=self.settings.ivf_lists,
                    ivf_probes=self.settings.ivf_probes,
                )
                valid = (
                    header.get("store_id") == await self.get_meta("store_id")
                    and header.get("embedder") == await self.get_meta("embedder")
                    and partition.seq <= seq
                    and partition.ivf.d == dim
                )
                if valid:
                    return partition
                log.info("index snapshot of %s/%s is stale; rebuilding from the database", tenant, kind)
            except Exception as exc:
                log.warning(
                    "index snapshot of %s/%s unreadable (%s); rebuilding", tenant, kind, type(exc).__name__
                )
        return self._new_partition(dim)

    @staticmethod
    def _seq(connection: Any, tenant: str, kind: str) -> int | None:
        rows = fetch(connection, _SEQ, (tenant, kind))
        return rows[0][0] if rows else None

    async def _dimension(self, tenant: str, kind: str) -> int:
        rows = await self.reader.run(lambda c: fetch(c, _DIMENSION, (tenant, kind)))
        return int(rows[0][0] // 4) if rows and rows[0][0] else 0

    async def _catch_up(self, tenant: str, kind: str, partition: Partition, seq: int) -> None:
        last_seq, last_rowid = partition.seq, 2**63 - 1
        while True:
            after = (tenant, kind, seq, last_seq, last_seq, int(last_rowid), CATCH_UP_BATCH)
            rows = await self.reader.run(lambda c, after=after: fetch(c, _CHANGES, after))
            if not rows:
                break
            last_seq, last_rowid = rows[-1][1], rows[-1][0]
            changes = _changes(rows)
            dims = {changes.vectors.shape[1]} if changes.live.any() else set()
            if dims and dims != {partition.dim}:
                # First vectors of a partition created empty (or a re-embedded store).
                partition = self._new_partition(max(dims))
                self.partitions[(tenant, kind)] = partition
            if len(changes) > 1000 or partition.live + len(changes) > partition.exact_limit:
                await asyncio.to_thread(partition.apply, changes, partition.seq)
            else:
                partition.apply(changes, partition.seq)
        partition.seq = seq
        if partition.matrix is not None and partition.live > partition.exact_limit:
            await asyncio.to_thread(partition.apply, None, seq)

    # -- searches ------------------------------------------------------------------------------

    async def vector_search(
        self, tenant: str, kind: str, vector: np.ndarray, *, k: int, filters: IndexFilters | None = None
    ) -> list[Hit]:
        if k <= 0:
            return []
        import numpy as np

        filters = filters or IndexFilters()
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        # Usually the partition is current and the whole search (sequence check, filter, ANN
        # search, re-scoring) is one hand-off to a reader thread: on a busy machine every
        # hand-off waits for a core, and they, not the arithmetic, make the latency.
        seq, hits = await self.reader.run(lambda c: self._vector_read(c, tenant, kind, query, k, filters))
        if hits is not None:
            return hits
        # The partition has to load or catch up with newer writes first.
        if await self._partition(tenant, kind, seq) is None:
            return []
        _, hits = await self.reader.run(
            lambda c: self._vector_read(c, tenant, kind, query, k, filters, at_least=seq)
        )
        return hits or []

    def _vector_read(
        self,
        connection: Any,
        tenant: str,
        kind: str,
        query: np.ndarray,
        k: int,
        filters: IndexFilters,
        at_least: int | None = None,
    ) -> tuple[int | None, list[Hit] | None]:
        """In a reader thread: (the partition's sequence number in the database, the hits), or
        hits None when the in-memory partition is behind ``at_least`` (default: the database)."""
        import numpy as np

        seq = self._seq(connection, tenant, kind)
        if seq is None:
            return None, []
        partition = self.partitions.get((tenant, kind))
        if partition is None or partition.seq < (seq if at_least is None else at_least):
            return seq, None
        if partition.size == 0:
            return seq, []
        if len(query) != partition.dim:
            raise BadRequest(f"query vector has {len(query)} dimensions; the index has {partition.dim}")
        allowed_rowids = None
        if filters.metadata:
            params: list[Any] = [tenant, kind]
            clause = metadata_clause(filters.metadata, params)
            sql = f"SELECT rowid FROM memidx_items WHERE tenant = ? AND kind = ? AND deleted = 0 AND {clause}"
            allowed_rowids = np.array([r[0] for r in fetch(connection, sql, params)], dtype=np.int64)
        with partition.guard:
            mask = partition.mask(
                user_id=filters.user_id,
                agent_id=filters.agent_id,
                session_id=filters.session_id,
                since=_epoch(filters.since),
                until=_epoch(filters.until),
                rowids=allowed_rowids,
            )
            approximate = partition.approximate
            wanted = k * self.settings.rescore_factor if approximate else k
            rowids, scores = partition.search(query, wanted, mask)
        if len(rowids) == 0:
            return seq, []
        if approximate:
            # Re-score the IVF candidates exactly with their float32 vectors, in one product;
            # only the best ``k`` need their ids looked up.
            found = [
                r for r in fetch(connection, _VECTORS.format(marks(len(rowids))), rowids.tolist()) if r[1]
            ]
            if not found:
                return seq, []
            vectors = np.frombuffer(b"".join(r[1] for r in found), dtype=np.float32).reshape(len(found), -1)
            exact = vectors @ query
            best = np.argsort(-exact, kind="stable")[:k]
            rowids, scores = np.array([found[i][0] for i in best.tolist()], dtype=np.int64), exact[best]
        ids = dict(fetch(connection, _IDS.format(marks(len(rowids))), rowids.tolist()))
        return seq, [
            Hit(id=ids[r], score=float(s), parts={"vector": float(s)})
            for r, s in zip(rowids.tolist(), scores.tolist(), strict=True)
            if r in ids
        ]

    async def text_search(
        self, tenant: str, kind: str, query: str, *, k: int, filters: IndexFilters | None = None
    ) -> list[Hit]:
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        filters = filters or IndexFilters()
        clauses = ["memidx_fts MATCH ?", "i.tenant = ?", "i.kind = ?", "i.deleted = 0"]
        params: list[Any] = [tenant, kind]
        for name in ("user_id", "agent_id", "session_id"):
            value = getattr(filters, name)
            if value is not None:
                clauses.append(f"i.{name} = ?")
                params.append(value)
        if filters.since is not None:
            clauses.append("i.occurred_at >= ?")
            params.append(_epoch(filters.since))
        if filters.until is not None:
            clauses.append("i.occurred_at < ?")
            params.append(_epoch(filters.until))
        if filters.metadata:
            clauses.append(metadata_clause(filters.metadata, params, "i.metadata"))
        # CROSS JOIN keeps the FTS5 match as the outer loop: the planner would otherwise walk
        # every item of the tenant and probe the full-text index for each.
        sql = (
            "SELECT i.id, bm25(memidx_fts) AS rank FROM memidx_fts CROSS JOIN memidx_items i "
            f"ON i.rowid = memidx_fts.rowid WHERE {' AND '.join(clauses)} ORDER BY rank LIMIT ?"
        )

        def search(connection: Any) -> list[Any]:
            chosen = self._rarer_terms(connection, terms) if len(terms) > 1 else terms
            match = " OR ".join(chosen)
            if len(params) == 2:  # no filter besides tenant and kind
                # The join looks up the item of every match before ranking (half the time of a
                # search with thousands of matches); the best few matches of the full-text
                # index are usually the tenant's own, so look those up first. Only when too few
                # of them are (another tenant or kind dominates) run the join.
                fetched = KEYWORD_OVERFETCH * k
                top = fetch(connection, _FTS_TOP, [match, fetched])
                ids = {}
                if top:
                    statement = _LIVE_IDS.format(marks(len(top)))
                    ids = dict(fetch(connection, statement, [*(r[0] for r in top), tenant, kind]))
                found = [(ids[rowid], rank) for rowid, rank in top if rowid in ids]
                if len(found) >= k or len(top) < fetched:
                    return found[:k]
            return fetch(connection, sql, [match, *params, k])

        rows = await self.reader.run(search)
        return [Hit(id=r[0], score=-float(r[1]), parts={"keyword": -float(r[1])}) for r in rows]

    def _rarer_terms(self, connection: Any, terms: list[str]) -> list[str]:
        """Drop terms found in at least ``common_term_docs`` items when rarer ones remain: their
        BM25 weight (idf) is small, and scoring each of their items is what makes a keyword
        search slow in a large store. Counting stops at the cap, so the check stays cheap."""
        cap = self.settings.common_term_docs
        counts = ", ".join(
            "(SELECT count(*) FROM (SELECT 1 FROM memidx_fts WHERE memidx_fts MATCH ? LIMIT ?))"
            for _ in terms
        )
        found = fetch(connection, f"SELECT {counts}", [value for term in terms for value in (term, cap)])[0]
        rarer = [term for term, count in zip(terms, found, strict=True) if count < cap]
        return rarer or terms
