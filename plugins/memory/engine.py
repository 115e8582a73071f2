"""``MemoryEngine``: what every memory type writes through and recalls with.

A write embeds the items' texts first (outside the transaction: inference must not hold the
database's write lock), then, inside the memory type's transaction, upserts them into the
storage backend's index together with their activation rows. A recall searches the index by
vector and by keyword, fuses the two rankings, and re-scores the candidates by recency,
importance and ACT-R base-level activation; what it returns is reinforced (one more access).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mnemogate.core.contracts import Embedder, Hit, IndexFilters, IndexItem, MemoryEvent, MemoryIndex, utcnow
from mnemogate.core.errors import StartupError, Unavailable
from mnemogate.core.registry import Registry
from mnemogate.plugins.memory.models import Activation
from mnemogate.plugins.memory.settings import MemorySettings

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("mnemogate.memory")

CHANNEL = "memory"
SERVICE = "memory"
EMBEDDER_RECORD = "embedder"
FLUSH_AT = 2000  # buffered accesses that trigger a flush before the timer
Mode = Literal["hybrid", "vector", "keyword"]


@dataclass(frozen=True, slots=True)
class ActivationState:
    occurred_at: datetime
    importance: float
    access_count: int
    last_accessed_at: datetime | None
    created_at: datetime
    archived_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ScoredHit(Hit):
    activation: ActivationState | None = None


class CachedEmbedder:
    """Batches texts for an embedder and remembers embeddings by content hash (LRU)."""

    def __init__(self, embedder: Embedder, *, batch: int, cache_size: int) -> None:
        self.embedder = embedder
        self.batch = batch
        self.cache_size = cache_size
        self.cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.pending: dict[bytes, asyncio.Future[np.ndarray]] = {}
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self.embedder.name

    @property
    def dim(self) -> int:
        return self.embedder.dim

    @property
    def record(self) -> str:
        return f"{self.embedder.name}/{self.embedder.dim}"

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np  # where used: start-up does not load numpy

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        keys = [hashlib.blake2b(t.encode(), digest_size=16).digest() for t in texts]
        missing: dict[bytes, list[int]] = {}
        for position, key in enumerate(keys):
            cached = self.cache.get(key)
            if cached is None:
                missing.setdefault(key, []).append(position)
            else:
                self.cache.move_to_end(key)
                out[position] = cached
        self.hits += len(texts) - sum(len(p) for p in missing.values())
        self.misses += sum(len(p) for p in missing.values())
        # A text another caller is embedding right now is awaited, not embedded twice (the
        # memory bridge recalls every memory type for one query at the same time).
        awaited = {key: self.pending[key] for key in missing if key in self.pending}
        todo = [key for key in missing if key not in awaited]
        loop = asyncio.get_running_loop()
        mine = {key: loop.create_future() for key in todo}
        self.pending.update(mine)
        try:
            for start in range(0, len(todo), self.batch):
                chunk = todo[start : start + self.batch]
                vectors = await self.embedder.embed([texts[missing[key][0]] for key in chunk])
                for key, vector in zip(chunk, np.asarray(vectors, dtype=np.float32), strict=True):
                    out[missing[key]] = vector
                    self._remember(key, vector)
                    mine[key].set_result(vector)
        except BaseException as exc:
            for future in mine.values():
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved: nobody else may be waiting for it
            raise
        finally:
            for key in todo:
                self.pending.pop(key, None)
        for key, future in awaited.items():
            out[missing[key]] = await asyncio.shield(future)
        return out

    def _remember(self, key: bytes, vector: np.ndarray) -> None:
        if self.cache_size == 0:
            return
        self.cache[key] = vector
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)


def base_level_activation(access_count: Any, lifetime: Any, since_last: Any, decay: float) -> Any:
    """ACT-R base-level activation B = ln(sum_j t_j^-d) over the item's presentations (its
    creation and every recall), with Petrov's (2006) approximation: the most recent one exactly,
    the others spread evenly over the item's lifetime, so only a count and two times are kept.
    ``lifetime`` and ``since_last`` (the most recent presentation) are seconds, at least 1;
    numbers or numpy arrays alike (recall scores all its candidates at once)."""
    import numpy as np

    others = np.asarray(access_count, dtype=np.float64)  # presentations besides the most recent
    lifetime = np.asarray(lifetime, dtype=np.float64)
    since_last = np.asarray(since_last, dtype=np.float64)
    spread = lifetime > since_last
    width = np.where(spread, lifetime - since_last, 1.0)
    total = since_last**-decay + np.where(
        others > 0,
        np.where(
            spread,
            others * (lifetime ** (1 - decay) - since_last ** (1 - decay)) / ((1 - decay) * width),
            others * since_last**-decay,
        ),
        0.0,
    )
    return np.log(total)


# Built once: recall reads activations on every call, and building the statement (clause
# coercion of every id) cost more than running it; the compiled form is cached by SQLAlchemy.
_ACTIVATIONS = select(
    Activation.item_id,
    Activation.occurred_at,
    Activation.importance,
    Activation.access_count,
    Activation.last_accessed_at,
    Activation.created_at,
    Activation.archived_at,
).where(
    Activation.tenant == bindparam("tenant"),
    Activation.kind == bindparam("kind"),
    Activation.item_id.in_(bindparam("ids", expanding=True)),
)


class NoIndex:
    """Stands in for the index when no installed plugin indexes this kind of database: the
    server runs, and every memory operation answers 503 saying why."""

    def __init__(self, dialect: str) -> None:
        self.reason = f"memory is unavailable: no storage backend serves {dialect} databases"

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        async def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise Unavailable(self.reason)

        return unavailable


def _upsert(dialect: str) -> Any:
    return pg_insert if dialect == "postgresql" else sqlite_insert


class MemoryEngine:
    def __init__(
        self, registry: Registry, settings: MemorySettings, index: MemoryIndex, embedder: Embedder
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.index = index
        self._accesses: dict[tuple[str, str, str], tuple[int, datetime]] = {}
        self._flush_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.embedder = CachedEmbedder(
            embedder, batch=settings.embed_batch, cache_size=settings.embed_cache_size
        )

    @classmethod
    def from_registry(cls, registry: Registry) -> MemoryEngine:
        settings: MemorySettings = registry.plugin_settings("memory")
        dialect = registry.db.dialect
        if settings.embedder not in registry.embedders:
            known = ", ".join(sorted(registry.embedders)) or "none"
            raise StartupError(
                f"plugins.memory.embedder {settings.embedder!r} is not registered (known: {known})"
            )
        if dialect in registry.storage_backends:
            index = registry.storage_backends[dialect](registry)
        else:
            log.warning("no storage backend serves %s databases: memory routes answer 503", dialect)
            index = NoIndex(dialect)
        embedder = registry.embedders[settings.embedder](registry)
        return cls(registry, settings, index, embedder)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.index.start()
        if not isinstance(self.index, NoIndex):
            await self.check_embedder()

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush_accesses()
        await self.index.close()
        closer = getattr(self.embedder.embedder, "close", None)
        if closer is not None:
            await closer()

    async def reset(self) -> None:
        """After the database's contents were replaced: buffered accesses belong to the old
        items, and the index's in-memory state is stale."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._accesses.clear()
        if not isinstance(self.index, NoIndex):
            await self.index.reset()

    async def check_embedder(self) -> None:
        """Refuse to mix vectors of two embedders: the store records the one that made its
        vectors, and a different one configured later stops start-up until ``reembed``."""
        recorded = await self.index.get_meta(EMBEDDER_RECORD)
        if recorded == self.embedder.record:
            return
        if recorded is not None and await self.index.count() > 0:
            raise StartupError(
                f"the memory store was embedded with {recorded} but the configured embedder is "
                f"{self.embedder.record}; run `mnemogate memory reembed` (or configure the old one)"
            )
        async with self.registry.db.write() as session:
            await self.index.set_meta(session, EMBEDDER_RECORD, self.embedder.record)

    # -- writes --------------------------------------------------------------------------------

    async def prepare(self, items: Sequence[IndexItem]) -> list[IndexItem]:
        """The items with their vectors (embedded in batches, cached by content)."""
        vectors = await self.embedder.embed([item.embedded_text for item in items])
        return [
            IndexItem(item.id, vector, item.text, item.attrs, item.vector_text)
            for item, vector in zip(items, vectors, strict=True)
        ]

    async def write(self, session: AsyncSession, tenant: str, kind: str, items: Sequence[IndexItem]) -> None:
        """Index prepared items in the caller's transaction. ``attrs`` may carry
        ``importance`` (0..1) and ``occurred_at`` (for recency)."""
        if not items:
            return
        await self.index.upsert(session, tenant, kind, items)
        now = utcnow()
        rows = [
            {
                "tenant": tenant,
                "kind": kind,
                "item_id": item.id,
                "occurred_at": item.attrs.get("occurred_at") or now,
                "importance": float(item.attrs.get("importance", 0.5)),
                "access_count": 0,
                "last_accessed_at": None,
                "created_at": now,
            }
            for item in items
        ]
        statement = _upsert(self.registry.db.dialect)(Activation.__table__)
        statement = statement.on_conflict_do_update(
            index_elements=["tenant", "kind", "item_id"],
            set_={"occurred_at": statement.excluded.occurred_at, "importance": statement.excluded.importance},
        )
        await session.execute(statement, rows)

    async def remove(self, session: AsyncSession, tenant: str, kind: str, ids: Sequence[str]) -> None:
        await self.index.delete(session, tenant, kind, ids)
        await session.execute(
            delete(Activation).where(
                Activation.tenant == tenant, Activation.kind == kind, Activation.item_id.in_(list(ids))
            )
        )

    async def set_importance(
        self, session: AsyncSession, tenant: str, kind: str, item_id: str, value: float
    ) -> None:
        await session.execute(
            update(Activation)
            .where(Activation.tenant == tenant, Activation.kind == kind, Activation.item_id == item_id)
            .values(importance=value)
        )

    async def activations(self, tenant: str, kind: str, ids: Sequence[str]) -> dict[str, ActivationState]:
        """Importance and access history of items, accesses not yet flushed included."""
        if not ids:
            return {}
        values = {"tenant": tenant, "kind": kind, "ids": list(ids)}
        # Through the session's connection: a Core statement needs none of the ORM's execution.
        rows = await self.registry.db.run_read(
            lambda session: session.connection().execute(_ACTIVATIONS, values).all()
        )
        states = {}
        for item_id, occurred_at, importance, count, last, created, archived in rows:
            pending = self._accesses.get((tenant, kind, item_id))
            if pending is not None:
                count, last = count + pending[0], pending[1]
            states[item_id] = ActivationState(occurred_at, importance, count, last, created, archived)
        return states

    async def vectors(self, tenant: str, kind: str, ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The stored vectors of items (those that have one): (ids, float32 rows)."""
        return await self.index.vectors(tenant, kind, ids)

    def strengths(self, states: Sequence[ActivationState], now: datetime) -> tuple[np.ndarray, np.ndarray]:
        """(ACT-R base-level activations, retrieval probabilities in (0, 1)) of items now, all at
        once: how their accesses have decayed, as recall scores them."""
        import numpy as np

        settings = self.settings
        lifetime = np.array([max((now - s.created_at).total_seconds(), 1.0) for s in states])
        since_last = np.array(
            [max((now - (s.last_accessed_at or s.created_at)).total_seconds(), 1.0) for s in states]
        )
        counts = np.array([s.access_count for s in states])
        base = base_level_activation(counts, lifetime, since_last, settings.actr_decay)
        return base, 1 / (1 + np.exp(-(base - settings.actr_threshold) / settings.actr_noise))

    def strength(self, state: ActivationState, now: datetime) -> tuple[float, float]:
        """``strengths`` of one item."""
        base, probability = self.strengths([state], now)
        return float(base[0]), float(probability[0])

    async def activation_rows(self, tenant: str) -> list[tuple[str, str, ActivationState]]:
        """(kind, item id, state) of every item of a tenant, accesses not yet flushed included:
        what age, access and decay statistics are computed from."""
        columns = (
            Activation.kind,
            Activation.item_id,
            Activation.occurred_at,
            Activation.importance,
            Activation.access_count,
            Activation.last_accessed_at,
            Activation.created_at,
            Activation.archived_at,
        )
        async with self.registry.db.read() as session:
            rows = (await session.execute(select(*columns).where(Activation.tenant == tenant))).all()
        out = []
        for kind, item_id, occurred_at, importance, count, last, created, archived in rows:
            pending = self._accesses.get((tenant, kind, item_id))
            if pending is not None:
                count, last = count + pending[0], pending[1]
            out.append(
                (kind, item_id, ActivationState(occurred_at, importance, count, last, created, archived))
            )
        return out

    # -- decay ---------------------------------------------------------------------------------

    async def never_recalled(
        self, tenant: str, kind: str, *, created_before: datetime, max_importance: float, limit: int
    ) -> list[str]:
        """Items not archived, never recalled, created before a time and not important: what
        decay archives (oldest first)."""
        query = (
            select(Activation.item_id)
            .where(
                Activation.tenant == tenant,
                Activation.kind == kind,
                Activation.archived_at.is_(None),
                Activation.access_count == 0,
                Activation.created_at < created_before,
                Activation.importance <= max_importance,
            )
            .order_by(Activation.created_at)
            .limit(limit)
        )
        async with self.registry.db.read() as session:
            found = list((await session.scalars(query)).all())
        # Accesses not yet flushed count as recalls.
        return [item_id for item_id in found if (tenant, kind, item_id) not in self._accesses]

    async def archive(self, tenant: str, kind: str, ids: Sequence[str], *, archived: bool = True) -> int:
        """Archive items (recall leaves them out; their rows stay) or, with ``archived=False``,
        bring them back. Answers how many changed."""
        if not ids:
            return 0
        async with self.registry.db.write() as session:
            result = await session.execute(
                update(Activation)
                .where(
                    Activation.tenant == tenant,
                    Activation.kind == kind,
                    Activation.item_id.in_(list(ids)),
                    Activation.archived_at.is_(None) if archived else Activation.archived_at.is_not(None),
                )
                .values(archived_at=utcnow() if archived else None)
            )
        changed = result.rowcount or 0
        if changed:
            await self.emit(tenant, kind, "updated", list(ids), {"archived": archived})
        return changed

    # -- recall --------------------------------------------------------------------------------

    async def recall(
        self,
        tenant: str,
        kind: str,
        query: str,
        *,
        k: int = 10,
        filters: IndexFilters | None = None,
        mode: Mode = "hybrid",
        reinforce: bool = True,
    ) -> list[ScoredHit]:
        """The ``k`` best items for ``query``; each hit's ``parts`` explain its score, its
        ``activation`` is the item's access history (this recall included)."""
        wanted = max(self.settings.candidates, 4 * k)

        async def by_vector() -> list[Hit]:
            vector = (await self.embedder.embed([query]))[0]
            return await self.index.vector_search(tenant, kind, vector, k=wanted, filters=filters)

        # The keyword search runs while the query is embedded (the model and SQLite both
        # release the GIL).
        searches = []
        if mode in ("hybrid", "vector"):
            searches.append(by_vector())
        if mode in ("hybrid", "keyword"):
            searches.append(self.index.text_search(tenant, kind, query, k=wanted, filters=filters))
        rankings = await asyncio.gather(*searches)
        named = dict(zip([m for m in ("vector", "keyword") if mode in ("hybrid", m)], rankings, strict=True))
        candidates = self._fuse(named)
        if not candidates:
            return []
        rows = await self.activations(tenant, kind, list(candidates))
        now = utcnow()
        best = self._best(candidates, rows, now, k)
        if reinforce and best:
            await self.reinforce(tenant, kind, [hit.id for hit, _ in best], now)
            best = [
                (
                    hit,
                    None
                    if state is None
                    else replace(state, access_count=state.access_count + 1, last_accessed_at=now),
                )
                for hit, state in best
            ]
        return [ScoredHit(hit.id, hit.score, hit.parts, state) for hit, state in best]

    def _fuse(self, rankings: Mapping[str, list[Hit]]) -> dict[str, dict[str, float]]:
        settings = self.settings
        weights = {"vector": settings.vector_weight, "keyword": settings.keyword_weight}
        active = {name: weights[name] for name in rankings}
        total = sum(active.values()) or 1.0
        candidates: dict[str, dict[str, float]] = {}
        for name, hits in rankings.items():
            best = max((hit.score for hit in hits), default=0.0)
            for rank, hit in enumerate(hits, start=1):
                parts = candidates.setdefault(hit.id, {"relevance": 0.0})
                parts[name] = hit.score
                parts[f"{name}_rank"] = rank
                if settings.fusion == "rrf":
                    # Normalised so an item ranked first everywhere has relevance 1.
                    share = active[name] * (settings.rrf_k + 1) / (settings.rrf_k + rank)
                else:
                    share = active[name] * (hit.score / best if best > 0 else 0.0)
                parts["relevance"] += share / total
        return candidates

    def _best(
        self,
        candidates: dict[str, dict[str, float]],
        rows: dict[str, ActivationState],
        now: datetime,
        k: int,
    ) -> list[tuple[Hit, ActivationState | None]]:
        """The ``k`` best live candidates by relevance, recency, importance and ACT-R activation:
        every candidate scored at once (numpy), the explaining parts filled in for the chosen."""
        import numpy as np

        settings = self.settings
        ids = [i for i in candidates if i not in rows or rows[i].archived_at is None]
        if not ids:
            return []
        states = [rows.get(i) for i in ids]
        known = np.array([state is not None for state in states])
        age_hours = np.array([0.0 if s is None else (now - s.occurred_at).total_seconds() for s in states])
        age_hours = np.maximum(age_hours, 0.0) / 3600
        base, activation = np.zeros(len(ids)), np.zeros(len(ids))
        if known.any():
            # ACT-R's retrieval probability: the activation part lies in (0, 1).
            base[known], activation[known] = self.strengths([s for s in states if s is not None], now)
        recency = np.where(known, 0.5 ** (age_hours / settings.recency_half_life_hours), 0.0)
        importance = np.array([0.0 if s is None else s.importance for s in states])
        relevance = np.array([candidates[i]["relevance"] for i in ids])
        score = (
            settings.relevance_weight * relevance
            + settings.recency_weight * recency
            + settings.importance_weight * importance
            + settings.activation_weight * activation
        )
        best = []
        for n in np.argsort(-score, kind="stable")[:k].tolist():
            parts = candidates[ids[n]]
            parts.update(recency=float(recency[n]), importance=float(importance[n]))
            if known[n]:
                parts["base_level"] = float(base[n])
            parts.update(activation=float(activation[n]), score=float(score[n]))
            best.append((Hit(id=ids[n], score=float(score[n]), parts=parts), states[n]))
        return best

    async def reinforce(
        self, tenant: str, kind: str, ids: Sequence[str], now: datetime | None = None
    ) -> None:
        """One more access for each item (ACT-R presentations). Accesses are buffered and
        written in one transaction every ``reinforce_flush_seconds`` (recall must not queue
        behind writers for the database's write lock); reads see them at once."""
        now = now or utcnow()
        for item_id in ids:
            key = (tenant, kind, item_id)
            count = self._accesses.get(key, (0, now))[0]
            self._accesses[key] = (count + 1, now)
        if len(self._accesses) >= FLUSH_AT:
            await self.flush_accesses()
        elif self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(self.settings.reinforce_flush_seconds, self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_timer = None
        task = asyncio.get_running_loop().create_task(self.flush_accesses())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush_accesses(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self._accesses:
            return
        pending, self._accesses = self._accesses, {}
        table = Activation.__table__
        statement = (
            update(table)
            .where(
                table.c.tenant == bindparam("b_tenant"),
                table.c.kind == bindparam("b_kind"),
                table.c.item_id == bindparam("b_item"),
            )
            .values(
                access_count=table.c.access_count + bindparam("b_count"), last_accessed_at=bindparam("b_at")
            )
        )
        rows = [
            {"b_tenant": t, "b_kind": k, "b_item": i, "b_count": count, "b_at": at}
            for (t, k, i), (count, at) in pending.items()
        ]
        try:
            async with self.registry.db.write() as session:
                await session.execute(statement, rows)
        except Exception as exc:
            log.warning("recording %d memory accesses failed: %s", len(rows), type(exc).__name__)

    # -- events --------------------------------------------------------------------------------

    async def emit(
        self,
        tenant: str,
        kind: str,
        action: Literal["created", "updated", "deleted", "recalled"],
        ids: Sequence[str],
        data: dict[str, Any] | None = None,
    ) -> None:
        """Tell ``/ws/memory`` subscribers and ``memory_event`` hooks about a committed write."""
        event = MemoryEvent(
            tenant=tenant, memory_type=kind, action=action, ids=list(ids), data=dict(data or {})
        )
        await self.registry.events.publish(
            CHANNEL, action, tenant, {"memory_type": kind, "ids": list(ids), **event.data}
        )
        await self.registry.host.broadcast("memory_event", event=event)
