"""Episodes: rows in ``episodic_episodes``, indexed through the memory engine.

An episode's vector embeds its content with the speaker in front ("Ana: ..."); its keyword
entry adds the turns just before it in the same session, so a reply like "yes, last Tuesday"
is found by the question it answers. (Measured on LOCOMO: the turn alone embeds better, the
keywords of its context rank better.) Every write is one transaction over the rows and the
index, then one event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, union_all
from sqlalchemy.orm import Session

from mnemogate.core.contracts import IndexFilters, IndexItem, utcnow
from mnemogate.core.db import new_id
from mnemogate.core.errors import BadRequest, NotFound, StartupError
from mnemogate.core.pagination import Page, newest_first, page_of_rows
from mnemogate.core.portable import ascending_batches, validate_records
from mnemogate.core.registry import Registry
from mnemogate.plugins.episodic.models import (
    Episode,
    EpisodeCreate,
    EpisodeRecord,
    EpisodeRow,
    EpisodeUpdate,
    Feedback,
    Recalled,
    RecallRequest,
)
from mnemogate.plugins.episodic.settings import EpisodicSettings

KIND = "episodic"
DEFAULT_IMPORTANCE = 0.5
FEEDBACK_STEP = 0.1
SESSIONS_PER_QUERY = 200  # SQLite allows 500 terms in a compound SELECT
FIELDS = ("session_id", "user_id", "agent_id", "actor", "role", "outcome")
# The rows of recalled episodes, by primary key only (a tenant condition would steer SQLite to the
# tenant index; the tenant is checked on the rows). Built once: recall is a hot path.
_RECALLED = select(EpisodeRow).where(EpisodeRow.id.in_(bindparam("ids", expanding=True)))


def _line(row: dict[str, Any]) -> str:
    return f"{row['actor']}: {row['content']}" if row.get("actor") else row["content"]


def _out(row: dict[str, Any], activation: Any = None) -> Episode:
    return Episode(
        id=row["id"],
        content=row["content"],
        occurred_at=row["occurred_at"],
        session_id=row["session_id"],
        user_id=row["user_id"],
        agent_id=row["agent_id"],
        actor=row["actor"],
        role=row["role"],
        outcome=row["outcome"],
        importance=row["importance"],
        metadata=row["meta"] or {},
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        access_count=activation.access_count if activation is not None else 0,
        last_accessed_at=activation.last_accessed_at if activation is not None else None,
    )


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row's values keyed by column (``meta`` is the ``metadata`` column)."""
    values = dict(row)
    values["metadata"] = values.pop("meta")
    return values


def _as_dict(row: EpisodeRow) -> dict[str, Any]:
    return {column: getattr(row, column) for column in EpisodeRow.__mapper__.columns.keys()}  # noqa: SIM118


def _record(row: EpisodeRow) -> dict[str, Any]:
    return {
        "record": "episode",
        "id": row.id,
        "content": row.content,
        "occurred_at": row.occurred_at,
        **{name: getattr(row, name) for name in FIELDS},
        "importance": row.importance,
        "metadata": row.meta or {},
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class EpisodeService:
    name = KIND
    record_types = ("episode",)

    def __init__(self) -> None:
        self._registry: Registry | None = None

    def start(self, registry: Registry) -> None:
        if "memory" not in registry.services:
            raise StartupError("the episodic plugin needs the memory plugin (it is disabled)")
        self._registry = registry

    @property
    def registry(self) -> Registry:
        assert self._registry is not None, "episodic memory is not started"
        return self._registry

    @property
    def engine(self) -> Any:
        return self.registry.services["memory"]

    @property
    def settings(self) -> EpisodicSettings:
        return self.registry.plugin_settings("episodic")

    # -- writes --------------------------------------------------------------------------------

    async def add(self, tenant: str, item: EpisodeCreate) -> Episode:
        return (await self.add_many(tenant, [item]))[0]

    async def add_many(self, tenant: str, items: Sequence[EpisodeCreate]) -> list[Episode]:
        if len(items) > self.settings.max_batch:
            raise BadRequest(f"at most {self.settings.max_batch} episodes per request")
        now = utcnow()
        rows = [
            {
                "id": new_id(),
                "tenant": tenant,
                "content": item.content,
                "occurred_at": item.occurred_at or now,
                **{name: getattr(item, name) for name in FIELDS},
                "importance": DEFAULT_IMPORTANCE if item.importance is None else item.importance,
                "meta": item.metadata or {},
                "created_at": now,
                "updated_at": now,
            }
            for item in items
        ]
        prepared = await self.engine.prepare(await self._index_items(tenant, rows))
        async with self.registry.db.write() as session:
            # The table, not the mapped class: a Core executemany skips the ORM's per-row work.
            await session.execute(insert(EpisodeRow.__table__), [_table_row(row) for row in rows])
            await self.engine.write(session, tenant, KIND, prepared)
        await self.engine.emit(tenant, KIND, "created", [r["id"] for r in rows])
        return [_out(row) for row in rows]

    async def update(self, tenant: str, item_id: str, changes: EpisodeUpdate) -> Episode:
        current = await self._row(tenant, item_id)
        values = changes.model_dump(exclude_unset=True)
        if "metadata" in values:
            values["meta"] = values.pop("metadata") or {}
        if "importance" in values and values["importance"] is None:
            values["importance"] = DEFAULT_IMPORTANCE
        if values.get("content") is None:
            values.pop("content", None)
        if values.get("occurred_at") is None:
            values.pop("occurred_at", None)
        row = {**current, **values, "updated_at": utcnow()}
        prepared = await self.engine.prepare(await self._index_items(tenant, [row], stored=True))
        async with self.registry.db.write() as session:
            stored = await session.get(EpisodeRow, item_id)
            if stored is None or stored.tenant != tenant:
                raise NotFound(f"no episode with id {item_id}")
            for key, value in row.items():
                setattr(stored, key, value)
            await self.engine.write(session, tenant, KIND, prepared)
        await self.engine.emit(tenant, KIND, "updated", [item_id])
        return _out(row)

    async def delete(self, tenant: str, item_id: str) -> None:
        async with self.registry.db.write() as session:
            result = await session.execute(
                delete(EpisodeRow).where(EpisodeRow.id == item_id, EpisodeRow.tenant == tenant)
            )
            if result.rowcount == 0:
                raise NotFound(f"no episode with id {item_id}")
            await self.engine.remove(session, tenant, KIND, [item_id])
        await self.engine.emit(tenant, KIND, "deleted", [item_id])

    async def feedback(self, tenant: str, item_id: str, feedback: Feedback) -> Episode:
        if feedback.outcome is None and feedback.importance is None and feedback.helpful is None:
            raise BadRequest("give an outcome, an importance or helpful")
        async with self.registry.db.write() as session:
            stored = await session.get(EpisodeRow, item_id)
            if stored is None or stored.tenant != tenant:
                raise NotFound(f"no episode with id {item_id}")
            if feedback.outcome is not None:
                stored.outcome = feedback.outcome
            importance = stored.importance if feedback.importance is None else feedback.importance
            if feedback.helpful is not None:
                importance += FEEDBACK_STEP if feedback.helpful else -FEEDBACK_STEP
            stored.importance = min(1.0, max(0.0, importance))
            stored.updated_at = utcnow()
            await self.engine.set_importance(session, tenant, KIND, item_id, stored.importance)
            row = _as_dict(stored)
        await self.engine.emit(
            tenant, KIND, "updated", [item_id], {"outcome": row["outcome"], "importance": row["importance"]}
        )
        return await self._with_activation(tenant, row)

    async def _index_items(
        self, tenant: str, rows: list[dict[str, Any]], *, stored: bool = False
    ) -> list[IndexItem]:
        """Index items for new rows, or (``stored``) for rows being changed."""
        before = await self._context(tenant, rows, {r["id"] for r in rows} if stored else set())
        items = []
        for row in rows:
            line = _line(row)
            items.append(
                IndexItem(
                    id=row["id"],
                    vector=None,
                    # The vector is the turn alone; its keywords include the turns before it.
                    text="\n".join([*before.get(row["id"], []), line]),
                    vector_text=line,
                    attrs={
                        "user_id": row["user_id"],
                        "agent_id": row["agent_id"],
                        "session_id": row["session_id"],
                        "occurred_at": row["occurred_at"],
                        "metadata": row["meta"],
                        "importance": row["importance"],
                    },
                )
            )
        return items

    async def _context(
        self, tenant: str, rows: list[dict[str, Any]], exclude: set[str]
    ) -> dict[str, list[str]]:
        """For each row, the lines of up to ``context_turns`` episodes before it in its session:
        earlier rows of the same batch first, then stored ones."""
        turns = self.settings.context_turns
        if turns == 0:
            return {}
        by_session: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row["session_id"] is not None:
                by_session.setdefault(row["session_id"], []).append(row)
        firsts = {}
        for members in by_session.values():
            members.sort(key=lambda r: r["occurred_at"])  # stable: same time keeps request order
            firsts[members[0]["session_id"]] = members[0]["occurred_at"]
        # Rows being changed are left out of their own context, each only in its own session's
        # query (a batch of re-imported rows would otherwise bind every id into every query).
        excluded = {sid: {r["id"] for r in members} & exclude for sid, members in by_session.items()}
        stored = await self._stored_before(tenant, firsts, turns, excluded)
        context: dict[str, list[str]] = {}
        for session_id, members in by_session.items():
            lines = [_line(r) for r in stored.get(session_id, [])]
            for row in members:
                context[row["id"]] = lines[-turns:]
                lines.append(_line(row))
        return context

    async def _stored_before(
        self, tenant: str, firsts: dict[str, datetime], turns: int, exclude: dict[str, set[str]]
    ) -> dict[str, list[dict[str, Any]]]:
        """The last ``turns`` stored episodes of each session up to its first new one: one
        index seek per session, many sessions per statement."""
        columns = (EpisodeRow.session_id, EpisodeRow.actor, EpisodeRow.content, EpisodeRow.occurred_at)
        selects = [
            select(*columns)
            .where(
                EpisodeRow.tenant == tenant,
                EpisodeRow.session_id == session_id,
                EpisodeRow.occurred_at <= first,
                EpisodeRow.id.not_in(exclude.get(session_id, ())),
            )
            .order_by(EpisodeRow.occurred_at.desc(), EpisodeRow.created_at.desc())
            .limit(turns)
            .subquery()
            .select()
            for session_id, first in firsts.items()
        ]

        def read(session: Session) -> dict[str, list[dict[str, Any]]]:
            found: dict[str, list[dict[str, Any]]] = {}
            for start in range(0, len(selects), SESSIONS_PER_QUERY):
                query = union_all(*selects[start : start + SESSIONS_PER_QUERY])
                for session_id, actor, content, _ in session.execute(query):
                    found.setdefault(session_id, []).append({"actor": actor, "content": content})
            return found

        # One hand-off to a reader thread (run_read), not one per statement and fetch.
        found = await self.registry.db.run_read(read)
        # Each session's rows came newest first.
        return {session_id: rows[::-1] for session_id, rows in found.items()}

    # -- export and import (PortableMemory) ----------------------------------------------------

    async def export_records(self, tenant: str) -> AsyncIterator[list[dict[str, Any]]]:
        query = select(EpisodeRow).where(EpisodeRow.tenant == tenant)
        async for rows in ascending_batches(self.registry.db, query, EpisodeRow.occurred_at, EpisodeRow.id):
            yield [_record(row) for row in rows]

    async def import_records(self, tenant: str, records: Sequence[dict[str, Any]]) -> list[str | None]:
        """Upsert episodes by id, in one transaction; per record None or why it was rejected."""
        errors: list[str | None] = [None] * len(records)
        chosen = validate_records(EpisodeRecord, list(enumerate(records)), errors)
        if not chosen:
            return errors
        rows = [
            {
                "id": item_id,
                "tenant": tenant,
                "content": record.content,
                "occurred_at": record.occurred_at,
                **{name: getattr(record, name) for name in FIELDS},
                "importance": record.importance,
                "meta": record.metadata or {},
                "created_at": record.created_at,
                "updated_at": record.updated_at,
            }
            for item_id, (_, record) in chosen.items()
        ]
        prepared = await self.engine.prepare(await self._index_items(tenant, rows, stored=True))
        async with self.registry.db.write() as session:
            taken = set(
                await session.scalars(
                    select(EpisodeRow.id).where(EpisodeRow.id.in_(list(chosen)), EpisodeRow.tenant != tenant)
                )
            )
            for item_id in taken:
                errors[chosen[item_id][0]] = "this id is used by another tenant's episode"
            rows = [row for row in rows if row["id"] not in taken]
            ids = [row["id"] for row in rows]
            await session.execute(
                delete(EpisodeRow).where(EpisodeRow.tenant == tenant, EpisodeRow.id.in_(ids))
            )
            if rows:
                await session.execute(insert(EpisodeRow), rows)
            await self.engine.write(
                session, tenant, KIND, [item for item in prepared if item.id not in taken]
            )
        if ids:
            await self.engine.emit(tenant, KIND, "created", ids, {"imported": True})
        return errors

    # -- reads ---------------------------------------------------------------------------------

    async def _row(self, tenant: str, item_id: str) -> dict[str, Any]:
        async with self.registry.db.read() as session:
            stored = await session.get(EpisodeRow, item_id)
        if stored is None or stored.tenant != tenant:
            raise NotFound(f"no episode with id {item_id}")
        return _as_dict(stored)

    async def _with_activation(self, tenant: str, row: dict[str, Any]) -> Episode:
        activations = await self.engine.activations(tenant, KIND, [row["id"]])
        return _out(row, activations.get(row["id"]))

    async def get(self, tenant: str, item_id: str) -> Episode:
        return await self._with_activation(tenant, await self._row(tenant, item_id))

    async def get_many(self, tenant: str, ids: Sequence[str]) -> list[Episode]:
        """The episodes of ``ids`` that exist, in the order given: two reads in all, where
        ``get`` for each would make two per episode."""
        statement = select(EpisodeRow).where(EpisodeRow.id.in_(list(ids)))
        rows = await self.registry.db.run_read(
            lambda session: {r.id: _as_dict(r) for r in session.scalars(statement) if r.tenant == tenant}
        )
        activations = await self.engine.activations(tenant, KIND, list(rows))
        return [_out(rows[item_id], activations.get(item_id)) for item_id in ids if item_id in rows]

    async def list(
        self, tenant: str, *, limit: int, cursor: str | None, filters: dict[str, Any] | None = None
    ) -> Page[Episode]:
        filters = filters or {}
        query = select(EpisodeRow).where(EpisodeRow.tenant == tenant)
        for name in ("session_id", "user_id", "agent_id", "actor", "outcome"):
            if filters.get(name) is not None:
                query = query.where(getattr(EpisodeRow, name) == filters[name])
        if filters.get("since") is not None:
            query = query.where(EpisodeRow.occurred_at >= filters["since"])
        if filters.get("until") is not None:
            query = query.where(EpisodeRow.occurred_at < filters["until"])
        query = newest_first(query, EpisodeRow.occurred_at, EpisodeRow.id, limit=limit, cursor=cursor)
        async with self.registry.db.read() as session:
            rows = [_as_dict(r) for r in await session.scalars(query)]
        activations = await self.engine.activations(tenant, KIND, [r["id"] for r in rows[:limit]])
        return page_of_rows(
            rows, limit, lambda r: _out(r, activations.get(r["id"])), lambda r: (r["occurred_at"], r["id"])
        )

    async def recall(
        self, tenant: str, query: str, *, k: int = 10, filters: Any = None, explain: bool = False
    ) -> list[Recalled]:
        request = RecallRequest(query=query, k=k, explain=explain, **(filters or {}))
        return await self.recall_request(tenant, request)

    async def recall_request(
        self, tenant: str, request: RecallRequest, *, reinforce: bool = True
    ) -> list[Recalled]:
        filters = IndexFilters(
            user_id=request.user_id,
            agent_id=request.agent_id,
            session_id=request.session_id,
            since=request.since,
            until=request.until,
            metadata=dict(request.metadata),
        )
        hits = await self.engine.recall(
            tenant, KIND, request.query, k=request.k, filters=filters, mode=request.mode, reinforce=reinforce
        )
        if not hits:
            return []
        ids = {"ids": [h.id for h in hits]}
        rows = await self.registry.db.run_read(
            lambda session: {r.id: _as_dict(r) for r in session.scalars(_RECALLED, ids) if r.tenant == tenant}
        )
        results = [
            Recalled(
                episode=_out(rows[hit.id], hit.activation),
                score=hit.score,
                explain=dict(hit.parts) if request.explain else None,
            )
            for hit in hits
            if hit.id in rows
        ]
        if reinforce:
            await self.engine.emit(
                tenant, KIND, "recalled", [r.episode.id for r in results], {"query": request.query}
            )
        return results
