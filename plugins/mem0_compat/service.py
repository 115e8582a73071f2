"""Mem0 memories over mnemogate's memory engine.

A memory is a row of ``mem0_memories`` indexed as memory kind ``mem0`` through the memory
engine (same storage backend, same hybrid recall as episodes, entities and skills; user, agent
and run map onto the index's user, agent and session). Every change is one transaction over
the rows, their history events and the index, then one ``memory_event``.

Adding: with ``infer=false`` each message becomes a memory unless the same text is already
stored for the same user/agent/run (event NONE). With ``infer=true`` the messages' facts (see
``extract``) are reconciled with the scope's memories: a fact whose text is stored already, or
whose nearest memory is at least ``duplicate_similarity`` alike with the same polarity, is NONE;
a fact at least ``update_similarity`` alike supersedes that memory (UPDATE, the old text in the
history); "forget ..." deletes the memory it matches (DELETE); anything else is ADD.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from mnemogate.core.contracts import ChatContext, IndexFilters, IndexItem, Principal, utcnow
from mnemogate.core.db import new_id
from mnemogate.core.errors import AppError, BadRequest, NotFound, StartupError, Unavailable
from mnemogate.core.registry import Registry
from mnemogate.plugins.mem0_compat import extract
from mnemogate.plugins.mem0_compat.extract import Fact
from mnemogate.plugins.mem0_compat.filters import CompiledFilter, compile_filter
from mnemogate.plugins.mem0_compat.models import HistoryRow, MemoryRow, Message, Scope, TenantConfig
from mnemogate.plugins.mem0_compat.settings import Mem0Settings

log = logging.getLogger("mnemogate.mem0")

KIND = "mem0"
SERVICE = "mem0"
DEFAULT_IMPORTANCE = 0.5
FEEDBACK_STEPS = {"POSITIVE": 0.1, "NEGATIVE": -0.1, "VERY_NEGATIVE": -0.2}
MAX_FETCH = 2000
ENTITY_COLUMNS = {"user": "user_id", "agent": "agent_id", "app": "app_id", "run": "run_id"}
CONFIGURABLE = ("llm_model", "prompt")
OFFLINE = "offline"  # a tenant's choice of the offline extractor over a configured model
COLUMNS = tuple(MemoryRow.__mapper__.columns.keys())


def text_hash(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def as_dict(row: MemoryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant": row.tenant,
        "memory": row.memory,
        "hash": row.hash,
        "user_id": row.user_id,
        "agent_id": row.agent_id,
        "run_id": row.run_id,
        "app_id": row.app_id,
        "actor_id": row.actor_id,
        "role": row.role,
        "metadata": row.meta or {},
        "categories": row.categories or [],
        "immutable": row.immutable,
        "expiration_date": row.expiration_date,
        "importance": row.importance,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _columns(row: Mapping[str, Any]) -> dict[str, Any]:
    """A memory dict as column values (the ``metadata`` column's attribute is ``meta``)."""
    return {key: row["metadata" if key == "meta" else key] for key in COLUMNS}


def _compiled(filters: CompiledFilter | Mapping[str, Any] | None) -> CompiledFilter:
    return filters if isinstance(filters, CompiledFilter) else compile_filter(filters)


def history_dict(row: HistoryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "memory_id": row.memory_id,
        "old_memory": row.old_memory,
        "new_memory": row.new_memory,
        "event": row.event,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "is_deleted": row.is_deleted,
        "actor_id": row.actor_id,
        "role": row.role,
        "user_id": row.user_id,
        "input": row.input,
        "metadata": row.meta,
    }


def expired(row: Mapping[str, Any], today: date) -> bool:
    return row["expiration_date"] is not None and row["expiration_date"] < today


@dataclass(slots=True)
class Found:
    row: dict[str, Any]
    score: float
    parts: dict[str, float]


@dataclass(slots=True)
class WritePlan:
    """What one add, update or delete changes, written in one transaction."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    vectors: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


class Mem0Service:
    name = KIND

    def __init__(self) -> None:
        self._registry: Registry | None = None

    def start(self, registry: Registry) -> None:
        if "memory" not in registry.services:
            raise StartupError("the mem0_compat plugin needs the memory plugin (it is disabled)")
        self._registry = registry

    @property
    def registry(self) -> Registry:
        assert self._registry is not None, "mem0_compat is not started"
        return self._registry

    @property
    def engine(self) -> Any:
        return self.registry.services["memory"]

    @property
    def settings(self) -> Mem0Settings:
        return self.registry.plugin_settings("mem0_compat")

    # -- adding --------------------------------------------------------------------------------

    async def add(
        self,
        principal: Principal,
        messages: Sequence[Message | Mapping[str, Any]],
        scope: Scope | Mapping[str, Any],
        *,
        metadata: dict[str, Any] | None = None,
        infer: bool = True,
        expiration_date: date | None = None,
        created_at: datetime | None = None,
        immutable: bool = False,
        prompt: str | None = None,
    ) -> list[dict[str, Any]]:
        """Remember ``messages`` for ``scope``; answers the events (id, memory, event). Other
        plugins may pass plain dicts (``{"role", "content"}`` and ``{"user_id", ...}``)."""
        messages = [m if isinstance(m, Message) else Message.model_validate(m) for m in messages]
        scope = scope if isinstance(scope, Scope) else Scope.model_validate(scope)
        if not scope.given():
            raise BadRequest("At least one identifier (user_id, agent_id, run_id) is required.")
        tenant = principal.tenant
        if infer:
            facts = await self._facts(principal, messages, prompt)
        else:
            facts = [
                Fact(" ".join(m.content.split()), "remember", extract.negated(m.content), m.role, m.name)
                for m in messages
                if m.content.strip()
            ]
        if not facts:
            return []
        now = utcnow()
        base = {
            "tenant": tenant,
            "user_id": scope.user_id,
            "agent_id": scope.agent_id,
            "run_id": scope.run_id,
            "app_id": scope.app_id,
            "metadata": dict(metadata or {}),
            "categories": [],
            "immutable": immutable,
            "expiration_date": expiration_date,
            "importance": DEFAULT_IMPORTANCE,
            "created_at": created_at or now,
            "updated_at": now,
        }
        vectors = await self.engine.embedder.embed([fact.text for fact in facts])
        plan = WritePlan()
        stored = await self._by_hash(tenant, scope, [text_hash(fact.text) for fact in facts])
        pending: list[tuple[dict[str, Any], Any]] = []  # rows this request adds, with their vectors
        input_messages = [m.model_dump(exclude_none=True) for m in messages]
        for fact, vector in zip(facts, vectors, strict=True):
            digest = text_hash(fact.text)
            if fact.intent == "remember" and (
                digest in stored or any(r["hash"] == digest for r, _ in pending)
            ):
                same = stored.get(digest) or next(r for r, _ in pending if r["hash"] == digest)
                plan.events.append({"id": same["id"], "memory": same["memory"], "event": "NONE"})
                continue
            if not infer:
                self._plan_add(plan, pending, base, fact, vector, input_messages)
                continue
            nearest = await self._nearest(tenant, scope, vector, pending, plan)
            if fact.intent == "forget":
                if nearest is not None and nearest[1] >= self.settings.update_similarity:
                    self._plan_delete(plan, nearest[0], fact, input_messages, now)
                continue
            if nearest is not None and not nearest[0]["immutable"]:
                row, similarity = nearest
                same_polarity = extract.negated(row["memory"]) == fact.negated
                if similarity >= self.settings.duplicate_similarity and same_polarity:
                    plan.events.append({"id": row["id"], "memory": row["memory"], "event": "NONE"})
                    continue
                if similarity >= self.settings.update_similarity:
                    self._plan_update(plan, row, fact, vector, input_messages, now)
                    continue
            self._plan_add(plan, pending, base, fact, vector, input_messages)
        await self._commit(tenant, plan)
        return plan.events

    async def _facts(
        self, principal: Principal, messages: Sequence[Message], prompt: str | None
    ) -> list[Fact]:
        config = await self.config(principal.tenant)
        model = config.get("llm_model") or self.settings.llm_model
        if model in ("", OFFLINE):
            return extract.offline_facts(messages)
        gateway = self.registry.services.get("gateway")
        if gateway is None:
            raise Unavailable(f"fact extraction model {model!r} is configured but the gateway is not running")
        body = {"model": model, "messages": extract.llm_request(messages, prompt or config.get("prompt"))}
        ctx = ChatContext(principal=principal, body=body, registry=self.registry, upstream_ms=0.0)
        try:
            reply = await gateway.complete(ctx, gateway.targets(model))
            return extract.llm_facts(reply, messages)
        except (AppError, ValueError) as exc:
            message = exc.message if isinstance(exc, AppError) else str(exc)
            raise Unavailable(f"fact extraction with {model!r} failed: {message}") from None

    async def _by_hash(self, tenant: str, scope: Scope, hashes: list[str]) -> dict[str, dict[str, Any]]:
        query = select(MemoryRow).where(MemoryRow.tenant == tenant, MemoryRow.hash.in_(hashes))
        for name in ("user_id", "agent_id", "run_id", "app_id"):
            if getattr(scope, name) is not None:
                query = query.where(getattr(MemoryRow, name) == getattr(scope, name))
        async with self.registry.db.read() as session:
            return {row.hash: as_dict(row) for row in await session.scalars(query)}

    async def _nearest(
        self,
        tenant: str,
        scope: Scope,
        vector: Any,
        pending: list[tuple[dict[str, Any], Any]],
        plan: WritePlan,
    ) -> tuple[dict[str, Any], float] | None:
        """The memory of ``scope`` most similar to ``vector`` (cosine): stored ones, and those
        this request adds or changes."""
        filters = IndexFilters(user_id=scope.user_id, agent_id=scope.agent_id, session_id=scope.run_id)
        hits = await self.engine.index.vector_search(tenant, KIND, vector, k=5, filters=filters)
        touched = {r["id"] for r in plan.updates} | {r["id"] for r in plan.deletes}
        hits = [h for h in hits if h.id not in touched]
        best: tuple[dict[str, Any], float] | None = None
        if hits:
            rows = await self._rows(tenant, [h.id for h in hits])
            for hit in hits:
                row = rows.get(hit.id)
                similarity = float(hit.parts.get("vector", hit.score))
                if (
                    row is not None
                    and scope.app_id in (None, row["app_id"])
                    and (best is None or similarity > best[1])
                ):
                    best = (row, similarity)
        for row, other in pending + [(r, plan.vectors[r["id"]]) for r in plan.updates]:
            similarity = float(other @ vector)
            if best is None or similarity > best[1]:
                best = (row, similarity)
        return best

    def _plan_add(
        self,
        plan: WritePlan,
        pending: list[tuple[dict[str, Any], Any]],
        base: dict[str, Any],
        fact: Fact,
        vector: Any,
        input_messages: list[dict[str, Any]],
    ) -> None:
        row = {
            **base,
            "id": new_id(),
            "memory": fact.text,
            "hash": text_hash(fact.text),
            "actor_id": fact.actor_id,
            "role": fact.role,
            "metadata": dict(base["metadata"]),
        }
        plan.inserts.append(row)
        plan.vectors[row["id"]] = vector
        pending.append((row, vector))
        plan.history.append(self._event(row, "ADD", None, fact.text, input_messages, row["created_at"]))
        plan.events.append({"id": row["id"], "memory": fact.text, "event": "ADD"})

    def _plan_update(
        self,
        plan: WritePlan,
        row: dict[str, Any],
        fact: Fact,
        vector: Any,
        input_messages: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        if any(r["id"] == row["id"] for r in plan.inserts):
            # Superseding a memory this same request adds: it is added with the newer text.
            row.update(memory=fact.text, hash=text_hash(fact.text))
            plan.vectors[row["id"]] = vector
            for event in plan.events:
                if event["id"] == row["id"]:
                    event["memory"] = fact.text
            for entry in plan.history:
                if entry["memory_id"] == row["id"]:
                    entry["new_memory"] = fact.text
            return
        changed = {**row, "memory": fact.text, "hash": text_hash(fact.text), "updated_at": now}
        plan.updates = [r for r in plan.updates if r["id"] != row["id"]] + [changed]
        plan.vectors[row["id"]] = vector
        plan.history.append(self._event(changed, "UPDATE", row["memory"], fact.text, input_messages, now))
        plan.events.append(
            {"id": row["id"], "memory": fact.text, "event": "UPDATE", "previous_memory": row["memory"]}
        )

    def _plan_delete(
        self, plan: WritePlan, row: dict[str, Any], fact: Fact | None, input_messages: Any, now: datetime
    ) -> None:
        plan.inserts = [r for r in plan.inserts if r["id"] != row["id"]]
        plan.updates = [r for r in plan.updates if r["id"] != row["id"]]
        plan.deletes.append(row)
        plan.history.append(self._event(row, "DELETE", row["memory"], None, input_messages, now))
        plan.events.append({"id": row["id"], "memory": row["memory"], "event": "DELETE"})

    def _event(
        self,
        row: dict[str, Any],
        event: str,
        old: str | None,
        new: str | None,
        input_messages: Any,
        at: datetime,
    ) -> dict[str, Any]:
        return {
            "id": new_id(),
            "tenant": row["tenant"],
            "memory_id": row["id"],
            "old_memory": old,
            "new_memory": new,
            "event": event,
            "user_id": row["user_id"],
            "actor_id": row["actor_id"],
            "role": row["role"],
            "input": input_messages,
            "meta": row["metadata"],
            "is_deleted": event == "DELETE",
            "created_at": at,
            "updated_at": at,
        }

    def _index_item(self, row: dict[str, Any], vector: Any) -> IndexItem:
        return IndexItem(
            id=row["id"],
            vector=vector,
            text=row["memory"],
            attrs={
                "user_id": row["user_id"],
                "agent_id": row["agent_id"],
                "session_id": row["run_id"],
                "occurred_at": row["created_at"],
                "metadata": row["metadata"],
                "importance": row["importance"],
            },
        )

    async def _commit(self, tenant: str, plan: WritePlan) -> None:
        if not (plan.inserts or plan.updates or plan.deletes):
            return
        items = [self._index_item(r, plan.vectors[r["id"]]) for r in plan.inserts + plan.updates]
        async with self.registry.db.write() as session:
            if plan.inserts:
                await session.execute(insert(MemoryRow), [_columns(r) for r in plan.inserts])
            for row in plan.updates:
                values = {k: v for k, v in _columns(row).items() if k not in ("id", "tenant", "created_at")}
                await session.execute(
                    update(MemoryRow)
                    .where(MemoryRow.id == row["id"], MemoryRow.tenant == tenant)
                    .values(values)
                )
            if plan.deletes:
                ids = [r["id"] for r in plan.deletes]
                await session.execute(
                    delete(MemoryRow).where(MemoryRow.tenant == tenant, MemoryRow.id.in_(ids))
                )
                await self.engine.remove(session, tenant, KIND, ids)
            if plan.history:
                await session.execute(insert(HistoryRow), plan.history)
            await self.engine.write(session, tenant, KIND, items)
        for action, rows in (("created", plan.inserts), ("updated", plan.updates), ("deleted", plan.deletes)):
            if rows:
                await self.engine.emit(tenant, KIND, action, [r["id"] for r in rows])

    # -- reading -------------------------------------------------------------------------------

    async def _rows(self, tenant: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        statement = select(MemoryRow).where(MemoryRow.id.in_(list(ids)))
        # One hand-off to a reader thread (search reads rows on every call); plain dicts come back.
        return await self.registry.db.run_read(
            lambda session: {r.id: as_dict(r) for r in session.scalars(statement) if r.tenant == tenant}
        )

    async def get(self, tenant: str, memory_id: str) -> dict[str, Any]:
        rows = await self._rows(tenant, [memory_id])
        if memory_id not in rows:
            raise NotFound("Memory not found")
        return rows[memory_id]

    async def list(
        self, tenant: str, filters: CompiledFilter | Mapping[str, Any] | None, *, show_expired: bool = False
    ) -> list[dict[str, Any]]:
        """Every memory of ``tenant`` passing ``filters`` (Mem0's filter language), newest first."""
        filters = _compiled(filters)
        query = select(MemoryRow).where(MemoryRow.tenant == tenant)
        for name, value in filters.pushdown.identity.items():
            query = query.where(getattr(MemoryRow, name) == value)
        query = query.order_by(MemoryRow.created_at.desc(), MemoryRow.id.desc())
        today = datetime.now(UTC).date()
        async with self.registry.db.read() as session:
            rows = [as_dict(r) for r in await session.scalars(query)]
        return [r for r in rows if (show_expired or not expired(r, today)) and filters.predicate(r)]

    async def search(
        self,
        tenant: str,
        query: str,
        filters: CompiledFilter | Mapping[str, Any] | None,
        *,
        top_k: int,
        threshold: float | None = None,
        show_expired: bool = False,
    ) -> list[Found]:
        """The ``top_k`` memories best matching ``query`` (hybrid recall) among those passing
        ``filters``. The index applies the filters' plain equalities; when there is more to
        check, it is asked for more candidates, and for more again while too few pass."""
        filters = _compiled(filters)
        index_filters = IndexFilters(
            user_id=filters.pushdown.identity.get("user_id"),
            agent_id=filters.pushdown.identity.get("agent_id"),
            session_id=filters.pushdown.identity.get("run_id"),
            metadata=dict(filters.pushdown.metadata),
        )
        today = datetime.now(UTC).date()
        wanted = top_k if filters.trivial else top_k * self.settings.search_overfetch
        while True:
            k = min(wanted, MAX_FETCH)
            hits = await self.engine.recall(tenant, KIND, query, k=k, filters=index_filters, reinforce=False)
            rows = await self._rows(tenant, [h.id for h in hits])
            found = [
                Found(rows[h.id], h.score, dict(h.parts))
                for h in hits
                if h.id in rows
                and (show_expired or not expired(rows[h.id], today))
                and filters.predicate(rows[h.id])
                and (threshold is None or h.score >= threshold)
            ]
            if len(found) >= top_k or len(hits) < k or k >= MAX_FETCH:
                break
            wanted = k * 4
        found = found[:top_k]
        if found:
            ids = [f.row["id"] for f in found]
            await self.engine.reinforce(tenant, KIND, ids)
            await self.engine.emit(tenant, KIND, "recalled", ids, {"query": query})
        return found

    async def history(self, tenant: str, memory_id: str) -> list[dict[str, Any]]:
        query = (
            select(HistoryRow)
            .where(HistoryRow.tenant == tenant, HistoryRow.memory_id == memory_id)
            .order_by(HistoryRow.created_at, HistoryRow.id)
        )
        async with self.registry.db.read() as session:
            return [history_dict(r) for r in await session.scalars(query)]

    async def entities(self, tenant: str) -> list[dict[str, Any]]:
        """Users, agents, apps and runs that have memories, with their counts."""
        found = []
        async with self.registry.db.read() as session:
            for kind, name in ENTITY_COLUMNS.items():
                column = getattr(MemoryRow, name)
                query = (
                    select(
                        column, func.count(), func.min(MemoryRow.created_at), func.max(MemoryRow.updated_at)
                    )
                    .where(MemoryRow.tenant == tenant, column.is_not(None))
                    .group_by(column)
                    .order_by(column)
                )
                for ident, count, first, last in await session.execute(query):
                    found.append(
                        {
                            "id": ident,
                            "name": ident,
                            "type": kind,
                            "total_memories": count,
                            "created_at": first,
                            "updated_at": last,
                        }
                    )
        return found

    # -- changing ------------------------------------------------------------------------------

    async def update(self, tenant: str, memory_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change a memory's ``text``, ``metadata`` and/or ``expiration_date`` (None clears it)."""
        return (await self.update_many(tenant, [(memory_id, changes)]))[0]

    async def update_many(
        self, tenant: str, changes: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[dict[str, Any]]:
        rows = await self._rows(tenant, [memory_id for memory_id, _ in changes])
        now = utcnow()
        plan = WritePlan()
        texts = {}
        for memory_id, change in changes:
            if memory_id not in rows:
                raise NotFound(f"Memory {memory_id[:64]} not found")
            row = rows[memory_id]
            if row["immutable"] and "text" in change:
                raise BadRequest(f"Memory {memory_id} is immutable and cannot be updated")
            new = {**row, "updated_at": now}
            if change.get("text") is not None:
                new.update(memory=change["text"], hash=text_hash(change["text"]))
            if change.get("metadata") is not None:
                new["metadata"] = dict(change["metadata"])
            if "expiration_date" in change:
                new["expiration_date"] = change["expiration_date"]
            plan.updates.append(new)
            texts[memory_id] = new["memory"]
            plan.history.append(self._event(new, "UPDATE", row["memory"], new["memory"], None, now))
            rows[memory_id] = new
        vectors = await self.engine.embedder.embed([r["memory"] for r in plan.updates])
        for row, vector in zip(plan.updates, vectors, strict=True):
            plan.vectors[row["id"]] = vector
        await self._commit(tenant, plan)
        return plan.updates

    async def delete_rows(self, tenant: str, rows: Sequence[dict[str, Any]]) -> int:
        plan = WritePlan()
        now = utcnow()
        for row in rows:
            self._plan_delete(plan, row, None, None, now)
        await self._commit(tenant, plan)
        return len(rows)

    async def delete(self, tenant: str, memory_id: str) -> None:
        await self.delete_rows(tenant, [await self.get(tenant, memory_id)])

    async def delete_ids(self, tenant: str, ids: Sequence[str]) -> int:
        rows = await self._rows(tenant, ids)
        missing = [i for i in ids if i not in rows]
        if missing:
            raise NotFound(f"Memory {missing[0][:64]} not found")
        return await self.delete_rows(tenant, list(rows.values()))

    async def delete_matching(self, tenant: str, spec: Mapping[str, Any]) -> int:
        return await self.delete_rows(
            tenant, await self.list(tenant, compile_filter(spec), show_expired=True)
        )

    async def delete_entity(self, tenant: str, entity_type: str, entity_id: str) -> int:
        """Every memory of the entity; none left is not an error (a client resetting deletes
        each entity in turn, and a memory of a user and a run goes with the first of them)."""
        return await self.delete_matching(tenant, {ENTITY_COLUMNS[entity_type]: entity_id})

    async def reset(self, tenant: str) -> None:
        """Every memory of the tenant and their history, gone."""
        async with self.registry.db.read() as session:
            ids = list(await session.scalars(select(MemoryRow.id).where(MemoryRow.tenant == tenant)))
        async with self.registry.db.write() as session:
            await session.execute(delete(MemoryRow).where(MemoryRow.tenant == tenant))
            await session.execute(delete(HistoryRow).where(HistoryRow.tenant == tenant))
            if ids:
                await self.engine.remove(session, tenant, KIND, ids)
        if ids:
            await self.engine.emit(tenant, KIND, "deleted", ids)

    async def feedback(self, tenant: str, memory_id: str, feedback: str | None) -> None:
        """Positive feedback makes a memory more important in recall, negative less."""
        row = await self.get(tenant, memory_id)
        step = FEEDBACK_STEPS.get(feedback or "", 0.0)
        importance = min(1.0, max(0.0, row["importance"] + step))
        async with self.registry.db.write() as session:
            await session.execute(
                update(MemoryRow)
                .where(MemoryRow.id == memory_id, MemoryRow.tenant == tenant)
                .values(importance=importance)
            )
            await self.engine.set_importance(session, tenant, KIND, memory_id, importance)
        await self.engine.emit(tenant, KIND, "updated", [memory_id], {"importance": importance})

    # -- configuration -------------------------------------------------------------------------

    async def config(self, tenant: str) -> dict[str, Any]:
        async with self.registry.db.read() as session:
            stored = await session.get(TenantConfig, tenant)
        return dict(stored.config) if stored is not None else {}

    async def configure(self, tenant: str, values: Mapping[str, Any]) -> dict[str, Any]:
        config = {**await self.config(tenant), **{k: v for k, v in values.items() if k in CONFIGURABLE}}
        config = {k: v for k, v in config.items() if v}
        async with self.registry.db.write() as session:
            stored = await session.get(TenantConfig, tenant)
            if stored is None:
                session.add(TenantConfig(tenant=tenant, config=config, updated_at=utcnow()))
            else:
                stored.config = config
                stored.updated_at = utcnow()
        return config
