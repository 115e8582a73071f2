"""Skills and executions.

A skill is indexed by its name, description, steps and tags. Matching a task ranks skills by
recall score plus ``success_weight`` times the Laplace-smoothed success rate
((successes + 1) / (finished + 2)), so an untried skill counts as a coin flip and a proven one
beats an equally similar skill that keeps failing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import delete, insert, select

from mnemogate.core.contracts import IndexFilters, IndexItem, utcnow
from mnemogate.core.db import new_id
from mnemogate.core.errors import Conflict, NotFound, StartupError
from mnemogate.core.pagination import Page, newest_first, page_of_rows
from mnemogate.core.portable import ascending_batches, validate_records
from mnemogate.core.registry import Registry
from mnemogate.plugins.procedural.models import (
    Execution,
    ExecutionFinish,
    ExecutionHistory,
    ExecutionRecord,
    ExecutionRow,
    ExecutionStart,
    Match,
    MatchRequest,
    Skill,
    SkillCreate,
    SkillRecord,
    SkillRow,
    SkillStats,
    SkillUpdate,
)
from mnemogate.plugins.procedural.settings import ProceduralSettings

KIND = "procedural"


def _stats(row: SkillRow) -> SkillStats:
    finished = row.successes + row.failures
    return SkillStats(
        executions=row.executions,
        successes=row.successes,
        failures=row.failures,
        running=row.executions - finished,
        success_rate=row.successes / finished if finished else None,
        mean_duration_ms=row.total_duration_ms / finished if finished else None,
    )


def _skill(row: SkillRow) -> Skill:
    return Skill(
        id=row.id,
        name=row.name,
        description=row.description,
        steps=list(row.steps or []),
        tags=list(row.tags or []),
        metadata=row.meta or {},
        user_id=row.user_id,
        agent_id=row.agent_id,
        stats=_stats(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _execution(row: ExecutionRow) -> Execution:
    return Execution(
        id=row.id,
        skill_id=row.skill_id,
        status=row.status,  # type: ignore[arg-type]
        context=row.context or {},
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_ms=row.duration_ms,
        error=row.error,
        output=row.output,
    )


def _index_item(row: SkillRow) -> IndexItem:
    parts = [row.name, row.description, *(row.steps or []), " ".join(row.tags or [])]
    return IndexItem(
        id=row.id,
        vector=None,
        text="\n".join(p for p in parts if p),
        attrs={"user_id": row.user_id, "agent_id": row.agent_id, "occurred_at": row.updated_at},
    )


SKILL_COLUMNS = ("name", "description", "steps", "tags", "user_id", "agent_id", "executions", "successes")
SKILL_COLUMNS += ("failures", "total_duration_ms", "created_at", "updated_at")
EXECUTION_COLUMNS = ("status", "context", "started_at", "finished_at", "duration_ms", "error", "output")


def _skill_record(row: SkillRow) -> dict[str, Any]:
    return {
        "record": "skill",
        "id": row.id,
        **{name: getattr(row, name) for name in SKILL_COLUMNS},
        "metadata": row.meta or {},
    }


def _execution_record(row: ExecutionRow) -> dict[str, Any]:
    return {
        "record": "execution",
        "id": row.id,
        "skill_id": row.skill_id,
        **{name: getattr(row, name) for name in EXECUTION_COLUMNS},
    }


def smoothed_success(row: SkillRow) -> float:
    return (row.successes + 1) / (row.successes + row.failures + 2)


class SkillService:
    name = KIND
    record_types = ("skill", "execution")

    def __init__(self) -> None:
        self._registry: Registry | None = None

    def start(self, registry: Registry) -> None:
        if "memory" not in registry.services:
            raise StartupError("the procedural plugin needs the memory plugin (it is disabled)")
        self._registry = registry

    @property
    def registry(self) -> Registry:
        assert self._registry is not None, "procedural memory is not started"
        return self._registry

    @property
    def engine(self) -> Any:
        return self.registry.services["memory"]

    @property
    def settings(self) -> ProceduralSettings:
        return self.registry.plugin_settings("procedural")

    async def _row(self, session: Any, tenant: str, skill_id: str) -> SkillRow:
        row = await session.get(SkillRow, skill_id)
        if row is None or row.tenant != tenant:
            raise NotFound(f"no skill with id {skill_id}")
        return row

    # -- skills --------------------------------------------------------------------------------

    async def add(self, tenant: str, item: SkillCreate) -> Skill:
        now = utcnow()
        row = SkillRow(
            id=new_id(),
            tenant=tenant,
            name=item.name,
            description=item.description,
            steps=item.steps,
            tags=item.tags,
            meta=item.metadata,
            user_id=item.user_id,
            agent_id=item.agent_id,
            executions=0,
            successes=0,
            failures=0,
            total_duration_ms=0.0,
            created_at=now,
            updated_at=now,
        )
        prepared = await self.engine.prepare([_index_item(row)])
        async with self.registry.db.write() as session:
            session.add(row)
            await self.engine.write(session, tenant, KIND, prepared)
        await self.engine.emit(tenant, KIND, "created", [row.id], {"name": row.name})
        return _skill(row)

    async def get(self, tenant: str, item_id: str) -> Skill:
        async with self.registry.db.read() as session:
            return _skill(await self._row(session, tenant, item_id))

    async def update(self, tenant: str, item_id: str, changes: SkillUpdate) -> Skill:
        values = changes.model_dump(exclude_unset=True, exclude_none=True)
        async with self.registry.db.read() as session:
            draft = await self._row(session, tenant, item_id)
        for key, value in values.items():
            setattr(draft, "meta" if key == "metadata" else key, value)
        draft.updated_at = utcnow()
        prepared = await self.engine.prepare([_index_item(draft)])
        async with self.registry.db.write() as session:
            row = await self._row(session, tenant, item_id)
            for key, value in values.items():
                setattr(row, "meta" if key == "metadata" else key, value)
            row.updated_at = draft.updated_at
            await self.engine.write(session, tenant, KIND, prepared)
        await self.engine.emit(tenant, KIND, "updated", [item_id])
        return _skill(row)

    async def delete(self, tenant: str, item_id: str) -> None:
        async with self.registry.db.write() as session:
            await session.delete(await self._row(session, tenant, item_id))
            await session.execute(
                delete(ExecutionRow).where(ExecutionRow.tenant == tenant, ExecutionRow.skill_id == item_id)
            )
            await self.engine.remove(session, tenant, KIND, [item_id])
        await self.engine.emit(tenant, KIND, "deleted", [item_id])

    async def list(
        self, tenant: str, *, limit: int, cursor: str | None, filters: dict[str, Any] | None = None
    ) -> Page[Skill]:
        filters = filters or {}
        query = select(SkillRow).where(SkillRow.tenant == tenant)
        for name in ("name", "user_id", "agent_id"):
            if filters.get(name) is not None:
                query = query.where(getattr(SkillRow, name) == filters[name])
        query = newest_first(query, SkillRow.created_at, SkillRow.id, limit=limit, cursor=cursor)
        async with self.registry.db.read() as session:
            rows = list(await session.scalars(query))
        return page_of_rows(rows, limit, _skill, lambda r: (r.created_at, r.id))

    # -- export and import (PortableMemory) ----------------------------------------------------

    async def export_records(self, tenant: str) -> AsyncIterator[list[dict[str, Any]]]:
        """The skills with their track record, then their executions."""
        db = self.registry.db
        skills = select(SkillRow).where(SkillRow.tenant == tenant)
        async for rows in ascending_batches(db, skills, SkillRow.created_at, SkillRow.id):
            yield [_skill_record(row) for row in rows]
        runs = select(ExecutionRow).where(ExecutionRow.tenant == tenant)
        async for rows in ascending_batches(db, runs, ExecutionRow.started_at, ExecutionRow.id):
            yield [_execution_record(row) for row in rows]

    async def import_records(self, tenant: str, records: Sequence[dict[str, Any]]) -> list[str | None]:
        """Upsert skills, then executions (whose skill must exist), by id in one transaction."""
        errors: list[str | None] = [None] * len(records)
        skills = validate_records(
            SkillRecord, [(p, r) for p, r in enumerate(records) if r.get("record") == "skill"], errors
        )
        runs = validate_records(
            ExecutionRecord, [(p, r) for p, r in enumerate(records) if r.get("record") != "skill"], errors
        )
        rows = [
            {
                "id": skill_id,
                "tenant": tenant,
                **{name: getattr(record, name) for name in SKILL_COLUMNS},
                "total_duration_ms": float(record.total_duration_ms),
                "meta": record.metadata,
            }
            for skill_id, (_, record) in skills.items()
        ]
        prepared = await self.engine.prepare([_index_item(SkillRow(**row)) for row in rows])
        touched: list[str] = []
        async with self.registry.db.write() as session:
            ids = [*skills, *runs]
            foreign = set(
                await session.scalars(
                    select(SkillRow.id).where(SkillRow.tenant != tenant, SkillRow.id.in_(ids))
                )
            ) | set(
                await session.scalars(
                    select(ExecutionRow.id).where(ExecutionRow.tenant != tenant, ExecutionRow.id.in_(ids))
                )
            )
            for item_id in foreign & set(skills):
                errors[skills[item_id][0]] = "this id is used by another tenant's skill"
            rows = [row for row in rows if row["id"] not in foreign]
            if rows:
                kept = [row["id"] for row in rows]
                await session.execute(
                    delete(SkillRow).where(SkillRow.tenant == tenant, SkillRow.id.in_(kept))
                )
                await session.execute(insert(SkillRow), rows)
                await self.engine.write(session, tenant, KIND, [i for i in prepared if i.id in kept])
                touched += kept
            known = set(
                await session.scalars(
                    select(SkillRow.id).where(
                        SkillRow.tenant == tenant,
                        SkillRow.id.in_([str(r.skill_id) for _, r in runs.values()]),
                    )
                )
            )
            executions = []
            for run_id, (position, record) in runs.items():
                if run_id in foreign:
                    errors[position] = "this id is used by another tenant's execution"
                elif str(record.skill_id) not in known:
                    errors[position] = f"no skill with id {record.skill_id} (import skills before executions)"
                else:
                    executions.append(
                        {
                            "id": run_id,
                            "tenant": tenant,
                            "skill_id": str(record.skill_id),
                            **{name: getattr(record, name) for name in EXECUTION_COLUMNS},
                        }
                    )
            if executions:
                await session.execute(
                    delete(ExecutionRow).where(
                        ExecutionRow.tenant == tenant, ExecutionRow.id.in_([e["id"] for e in executions])
                    )
                )
                await session.execute(insert(ExecutionRow), executions)
                touched += sorted({e["skill_id"] for e in executions} - set(touched))
        if touched:
            await self.engine.emit(tenant, KIND, "created", touched, {"imported": True})
        return errors

    # -- matching ------------------------------------------------------------------------------

    async def recall(
        self, tenant: str, query: str, *, k: int = 5, filters: Any = None, explain: bool = False
    ) -> list[Match]:
        return await self.match(tenant, MatchRequest(task=query, k=k, explain=explain, **(filters or {})))

    async def match(self, tenant: str, request: MatchRequest) -> list[Match]:
        filters = IndexFilters(user_id=request.user_id, agent_id=request.agent_id)
        # Wider than k: the success rate may reorder (and min_success_rate drop) candidates.
        hits = await self.engine.recall(
            tenant, KIND, request.task, k=request.k * 4, filters=filters, reinforce=False
        )
        if not hits:
            return []
        statement = select(SkillRow).where(SkillRow.tenant == tenant, SkillRow.id.in_([h.id for h in hits]))
        # One hand-off to a reader thread; plain values come back.
        found = await self.registry.db.run_read(
            lambda session: {r.id: (_skill(r), smoothed_success(r)) for r in session.scalars(statement)}
        )
        weight = self.settings.success_weight
        matches = []
        for hit in hits:
            if hit.id not in found:
                continue
            skill, success = found[hit.id]
            if (
                request.min_success_rate is not None
                and (skill.stats.success_rate or 0.0) < request.min_success_rate
            ):
                continue
            score = hit.score + weight * success
            parts = {**hit.parts, "smoothed_success": success, "score": score}
            matches.append(Match(skill=skill, score=score, explain=parts if request.explain else None))
        matches.sort(key=lambda m: -m.score)
        matches = matches[: request.k]
        if matches:
            await self.engine.reinforce(tenant, KIND, [m.skill.id for m in matches])
            await self.engine.emit(
                tenant, KIND, "recalled", [m.skill.id for m in matches], {"task": request.task}
            )
        return matches

    # -- executions ----------------------------------------------------------------------------

    async def start_execution(self, tenant: str, skill_id: str, request: ExecutionStart) -> Execution:
        row = ExecutionRow(
            id=new_id(),
            tenant=tenant,
            skill_id=skill_id,
            status="running",
            context=request.context,
            started_at=request.started_at or utcnow(),
            finished_at=None,
            duration_ms=None,
            error=None,
            output=None,
        )
        async with self.registry.db.write() as session:
            skill = await self._row(session, tenant, skill_id)
            skill.executions += 1
            session.add(row)
        await self.engine.emit(
            tenant, KIND, "updated", [skill_id], {"execution_id": row.id, "status": "running"}
        )
        return _execution(row)

    async def finish_execution(self, tenant: str, execution_id: str, request: ExecutionFinish) -> Execution:
        now = utcnow()
        async with self.registry.db.write() as session:
            row = await session.get(ExecutionRow, execution_id)
            if row is None or row.tenant != tenant:
                raise NotFound(f"no execution with id {execution_id}")
            if row.status != "running":
                raise Conflict(f"execution {execution_id} already finished ({row.status})")
            skill = await self._row(session, tenant, row.skill_id)
            row.status = request.status
            row.finished_at = now
            row.duration_ms = (
                request.duration_ms
                if request.duration_ms is not None
                else max((now - row.started_at).total_seconds() * 1000, 0.0)
            )
            row.error = request.error
            row.output = request.output
            if request.status == "success":
                skill.successes += 1
            else:
                skill.failures += 1
            skill.total_duration_ms += row.duration_ms
        await self.engine.emit(
            tenant, KIND, "updated", [row.skill_id], {"execution_id": row.id, "status": row.status}
        )
        return _execution(row)

    async def executions(
        self, tenant: str, skill_id: str, *, limit: int, cursor: str | None
    ) -> ExecutionHistory:
        async with self.registry.db.read() as session:
            skill = await self._row(session, tenant, skill_id)
            query = select(ExecutionRow).where(
                ExecutionRow.tenant == tenant, ExecutionRow.skill_id == skill_id
            )
            query = newest_first(query, ExecutionRow.started_at, ExecutionRow.id, limit=limit, cursor=cursor)
            rows = list(await session.scalars(query))
        page = page_of_rows(rows, limit, _execution, lambda r: (r.started_at, r.id))
        return ExecutionHistory(items=page.items, next_cursor=page.next_cursor, stats=_stats(skill))
