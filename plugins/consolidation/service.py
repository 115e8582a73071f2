"""Consolidation runs: bounded passes over a tenant's episodes that turn them into knowledge.

A run reads at most ``max_episodes_per_run`` episodes the tenant's previous runs have not seen
(newest first, through the episodic memory type; an unfinished pass resumes where it stopped),
then: clusters them by embedding into topics (semantic entities of type ``topic``), extracts
names and relations into semantic memory, counts successful tool sequences and turns the
recurring ones into procedural skills, and archives memories never recalled (decay). Progress
and results go to ``/ws/learning``. Runs happen on demand and on a schedule (tenants with new
episodes first, then the least recently consolidated); one run per tenant at a time.
Extraction is deterministic and offline (see ``extract``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from mnemogate.core.contracts import EntityDraft, RelationDraft, SkillDraft, utcnow
from mnemogate.core.db import new_id
from mnemogate.core.errors import Conflict, NotFound, Unavailable, describe_exception
from mnemogate.core.pagination import Page, page_of_sequence
from mnemogate.core.registry import Registry
from mnemogate.plugins.consolidation import extract
from mnemogate.plugins.consolidation.models import (
    Pattern,
    PatternRow,
    RunResult,
    Status,
    TenantProgress,
    TenantStateRow,
    Topic,
)
from mnemogate.plugins.consolidation.settings import ConsolidationSettings

log = logging.getLogger("mnemogate.consolidation")

SERVICE = "consolidation"
LEARNING = "learning"
SOURCE = {"source": "consolidation"}
TICK = timedelta(microseconds=1)
MAX_OCCURRENCES = 500  # occurrence ids kept per pattern (the support saturates there)
MAX_SESSIONS = 100


def _line(episode: Any) -> str:
    return f"{episode.actor}: {episode.content}" if episode.actor else episode.content


def _step(episode: Any) -> extract.Step | None:
    """The tool call an episode records: an MCP call (server/tool, with its outcome) or a tool
    call an assistant asked for through the gateway."""
    meta = episode.metadata or {}
    if meta.get("source") == "mcp" and meta.get("server") and meta.get("tool"):
        name, ok = f"{meta['server']}/{meta['tool']}", episode.outcome != "failure"
    elif episode.role == "tool_call" and meta.get("tool"):
        name, ok = str(meta["tool"]), True
    else:
        return None
    return extract.Step(name, ok, episode.id, episode.session_id, episode.occurred_at)


class Consolidator:
    def __init__(self, registry: Registry, settings: ConsolidationSettings) -> None:
        self.registry = registry
        self.settings = settings
        self.dirty: set[str] = set()
        self.next_run_at: datetime | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._watch_writes()))
        if self.settings.interval_seconds > 0:
            self._tasks.append(loop.create_task(self._schedule()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _watch_writes(self) -> None:
        """Tenants with new episodes are due first (memory writes are announced on ``memory``)."""
        async with self.registry.events.subscribe("memory", None) as subscription:
            while True:
                event = await subscription.get()
                if event.type == "created" and event.data.get("memory_type") == "episodic":
                    self.dirty.add(event.tenant)

    async def _schedule(self) -> None:
        interval = self.settings.interval_seconds
        while True:
            self.next_run_at = utcnow() + timedelta(seconds=interval)
            await asyncio.sleep(interval)
            try:
                await self.scheduled_run()
            except Exception as exc:
                log.error("scheduled consolidation failed: %s", describe_exception(exc))

    async def scheduled_run(self) -> list[RunResult]:
        """One scheduled pass: tenants with new episodes, then the least recently consolidated."""
        async with self.registry.db.read() as session:
            known = list(
                await session.scalars(select(TenantStateRow.tenant).order_by(TenantStateRow.last_run_at))
            )
        due = sorted(self.dirty) + [tenant for tenant in known if tenant not in self.dirty]
        results = []
        for tenant in due[: self.settings.max_tenants_per_run]:
            self.dirty.discard(tenant)
            try:
                results.append(await self.run(tenant))
            except Conflict:
                continue
            except Exception as exc:
                log.error("consolidating tenant %s failed: %s", tenant, describe_exception(exc))
        return results

    # -- runs ----------------------------------------------------------------------------------

    def running(self, tenant: str) -> bool:
        lock = self._locks.get(tenant)
        return lock is not None and lock.locked()

    @contextlib.asynccontextmanager
    async def _exclusive(self, tenant: str) -> Any:
        lock = self._locks.setdefault(tenant, asyncio.Lock())
        if lock.locked():
            raise Conflict("a consolidation run for this tenant is in progress", code="consolidation_running")
        async with lock:
            yield

    def _services(self) -> tuple[Any, Any, Any]:
        types = self.registry.memory_types
        missing = [name for name in ("episodic", "semantic", "procedural") if name not in types]
        if missing:
            raise Unavailable(f"consolidation needs the {', '.join(missing)} memory plugin(s)")
        return types["episodic"], types["semantic"], types["procedural"]

    async def run(self, tenant: str, *, max_episodes: int | None = None, decay: bool = True) -> RunResult:
        episodes_type, _, _ = self._services()
        limit = max_episodes or self.settings.max_episodes_per_run
        async with self._exclusive(tenant):
            state = await self._state(tenant)
            since = state.watermark + TICK if state.watermark is not None else None
            page: Page[Any] = await episodes_type.list(
                tenant, limit=limit, cursor=state.resume_cursor, filters={"since": since}
            )
            result = await self.consolidate(tenant, page.items)
            if decay:
                result.archived = await self.decay(tenant)
            result.more = page.next_cursor is not None
            top = state.pass_top or (page.items[0].occurred_at if page.items else None)
            async with self.registry.db.write() as session:
                row = await session.get(TenantStateRow, tenant)
                if row is None:
                    row = TenantStateRow(tenant=tenant, runs=0)
                    session.add(row)
                if result.more:
                    row.resume_cursor, row.pass_top = page.next_cursor, top
                else:
                    row.watermark = top or row.watermark
                    row.resume_cursor, row.pass_top = None, None
                row.runs = (row.runs or 0) + 1
                row.last_run_at = result.finished_at = utcnow()
                row.last_result = result.model_dump(mode="json")
            await self._publish(tenant, "consolidation.finished", result.model_dump(mode="json"))
            return result

    async def promote_session(self, tenant: str, session_id: str) -> RunResult:
        """Consolidate one session's episodes (at most ``max_episodes_per_run``, newest), whatever
        earlier runs saw: its recurring names, relations and tool sequences become memory."""
        episodes_type, _, _ = self._services()
        async with self._exclusive(tenant):
            page = await episodes_type.list(
                tenant,
                limit=self.settings.max_episodes_per_run,
                cursor=None,
                filters={"session_id": session_id},
            )
            if not page.items:
                raise NotFound(f"no episodes in session {session_id}")
            result = await self.consolidate(tenant, page.items, session_id=session_id)
            result.more = page.next_cursor is not None
            await self._publish(tenant, "consolidation.finished", result.model_dump(mode="json"))
            return result

    async def _state(self, tenant: str) -> TenantStateRow:
        async with self.registry.db.read() as session:
            row = await session.get(TenantStateRow, tenant)
        return row or TenantStateRow(tenant=tenant, runs=0)

    async def _publish(self, tenant: str, kind: str, data: dict[str, Any]) -> None:
        await self.registry.events.publish(LEARNING, kind, tenant, data)

    async def consolidate(
        self, tenant: str, episodes: Sequence[Any], *, session_id: str | None = None
    ) -> RunResult:
        run_id = new_id()
        started = utcnow()
        episodes = sorted(episodes, key=lambda e: (e.occurred_at, e.id))
        base = {"run_id": run_id, "session_id": session_id}
        await self._publish(tenant, "consolidation.started", {**base, "episodes": len(episodes)})
        result = RunResult(
            run_id=run_id,
            tenant=tenant,
            session_id=session_id,
            started_at=started,
            finished_at=started,
            episodes=len(episodes),
            clusters=0,
        )
        texts = [
            e.content for e in episodes if e.role != "tool_call" and (e.metadata or {}).get("source") != "mcp"
        ]
        steps = [step for step in map(_step, episodes) if step is not None]
        names = extract.extract(
            texts,
            min_mentions=self.settings.min_entity_mentions,
            min_support=self.settings.min_relation_support,
        )
        for label, work in (
            ("topics", lambda: self._topics(tenant, episodes, result)),
            ("entities", lambda: self._entities(tenant, names, result)),
            ("skills", lambda: self._skills(tenant, steps, result)),
        ):
            await work()
            await self._publish(tenant, "consolidation.progress", {**base, "step": label, "done": True})
        result.finished_at = utcnow()
        return result

    # -- steps ---------------------------------------------------------------------------------

    async def _topics(self, tenant: str, episodes: Sequence[Any], result: RunResult) -> None:
        if len(episodes) < self.settings.min_cluster_size:
            return
        engine = self.registry.services["memory"]
        lines = [_line(e) for e in episodes]
        groups = extract.cluster(await engine.embedder.embed(lines), self.settings.cluster_threshold)
        result.clusters = len(groups)
        for group in groups:
            if len(group) < self.settings.min_cluster_size:
                continue
            words = extract.keywords(episodes[i].content for i in group)
            if not words:
                continue
            label = " / ".join(words)
            sample = episodes[group[0]].content[:200]
            entity_id, _ = await self._entity(
                tenant,
                EntityDraft(
                    name=label,
                    type="topic",
                    description=f"Recurring topic of {len(group)} episodes, e.g.: {sample}",
                    attributes={"episodes": len(group), "keywords": words},
                    metadata={**SOURCE, "episode_ids": [episodes[i].id for i in group[:20]]},
                ),
            )
            result.topics.append(Topic(label=label, entity_id=entity_id, episodes=len(group)))

    async def _entity(self, tenant: str, draft: EntityDraft) -> tuple[str, bool]:
        """The id of the current entity with this name and type, made when there is none."""
        _, semantic, _ = self._services()
        found = await semantic.list(
            tenant, limit=1, cursor=None, filters={"name": draft.name, "type": draft.type}
        )
        if found.items:
            return found.items[0].id, False
        return (await semantic.add(tenant, draft)).id, True

    async def _entities(self, tenant: str, names: extract.Extracted, result: RunResult) -> None:
        _, semantic, _ = self._services()
        ids: dict[str, str] = {}
        for name, mentions in sorted(names.entities.items()):
            draft = EntityDraft(
                name=name[:256],
                type="entity",
                description=names.descriptions[name],
                attributes={"mentions": mentions},
                metadata=dict(SOURCE),
            )
            ids[name], created = await self._entity(tenant, draft)
            if created:
                result.entities_created.append(name)
            else:
                result.entities_known += 1
        relations = [
            RelationDraft(
                source_id=ids[a],
                target_id=ids[b],
                type="related_to",
                weight=min(0.9, 0.3 + 0.1 * n),
                metadata=dict(SOURCE),
            )
            for (a, b), n in names.related.items()
        ]
        relations += [
            RelationDraft(
                source_id=ids[a],
                target_id=ids[b],
                type=kind[:64],
                weight=min(0.9, 0.4 + 0.1 * n),
                metadata=dict(SOURCE),
            )
            for (a, kind, b), n in names.links.items()
        ]
        for relation in relations:
            try:
                await semantic.relate(tenant, relation)
            except Conflict:
                continue  # known already
            result.relations_created += 1

    async def _skills(self, tenant: str, steps: list[extract.Step], result: RunResult) -> None:
        found = extract.occurrences(steps, self.settings.max_pattern_length)
        if not found:
            return
        sessions_of = {s.episode_id: s.session_id for s in steps}
        now = utcnow()
        signatures = {" -> ".join(pattern)[:512]: pattern for pattern in found}
        async with self.registry.db.write() as session:
            rows = {
                row.signature: row
                for row in await session.scalars(
                    select(PatternRow).where(
                        PatternRow.tenant == tenant, PatternRow.signature.in_(list(signatures))
                    )
                )
            }
            for signature, pattern in signatures.items():
                row = rows.get(signature)
                if row is None:
                    row = rows[signature] = PatternRow(
                        tenant=tenant,
                        signature=signature,
                        steps=list(pattern),
                        occurrences=[],
                        sessions=[],
                        support=0,
                        first_seen_at=now,
                    )
                    session.add(row)
                occurrences = list(dict.fromkeys([*row.occurrences, *sorted(found[pattern])]))[
                    -MAX_OCCURRENCES:
                ]
                new_sessions = [sessions_of[o] for o in sorted(found[pattern]) if sessions_of[o]]
                row.occurrences = occurrences
                row.sessions = list(dict.fromkeys([*row.sessions, *new_sessions]))[-MAX_SESSIONS:]
                row.support = len(occurrences)
                row.last_seen_at = now
            result.patterns_seen = len(signatures)
            eligible = {
                tuple(row.steps): row.support
                for row in rows.values()
                if row.support >= self.settings.min_pattern_support
            }
            chosen = [rows[" -> ".join(p)[:512]] for p in extract.maximal(eligible)]
            todo = [row for row in chosen if row.skill_id is None]
        for row in todo:
            skill_id = await self._skill(tenant, row)
            async with self.registry.db.write() as session:
                stored = await session.get(PatternRow, (tenant, row.signature))
                if stored is not None:
                    stored.skill_id = skill_id
            result.skills_created.append(skill_id)

    async def _skill(self, tenant: str, row: PatternRow) -> str:
        _, _, procedural = self._services()
        name = row.signature[:200]
        found = await procedural.list(tenant, limit=1, cursor=None, filters={"name": name})
        if found.items:
            return found.items[0].id
        servers = sorted({step.split("/", 1)[0] for step in row.steps if "/" in step})
        draft = SkillDraft(
            name=name,
            description=(
                f"A tool sequence that succeeded {row.support} times in {len(row.sessions)} session(s): "
                + ", then ".join(row.steps)
            ),
            steps=[f"call {step}" for step in row.steps],
            tags=["learned", "tool-sequence", *servers][:50],
            metadata={**SOURCE, "signature": row.signature, "support": row.support},
        )
        return (await procedural.add(tenant, draft)).id

    async def decay(self, tenant: str) -> int:
        """Archive what was never recalled, is old enough and not important (oldest first)."""
        engine = self.registry.services["memory"]
        budget = self.settings.max_archived_per_run
        before = utcnow() - timedelta(days=self.settings.archive_after_days)
        archived = 0
        for kind in self.settings.archive_types:
            if budget - archived <= 0:
                break
            ids = await engine.never_recalled(
                tenant,
                kind,
                created_before=before,
                max_importance=self.settings.archive_max_importance,
                limit=budget - archived,
            )
            archived += await engine.archive(tenant, kind, ids)
        return archived

    # -- clustering for other plugins ----------------------------------------------------------

    async def cluster_texts(self, texts: Sequence[str], threshold: float | None = None) -> list[list[int]]:
        """Indices of ``texts`` grouped as consolidation groups episodes (embedding clusters)."""
        if not texts:
            return []
        vectors = await self.registry.services["memory"].embedder.embed(list(texts))
        return extract.cluster(vectors, threshold or self.settings.cluster_threshold)

    @staticmethod
    def label(texts: Sequence[str]) -> list[str]:
        """The words a cluster of texts is labelled by."""
        return extract.keywords(texts)

    # -- reads ---------------------------------------------------------------------------------

    async def status(self, tenant: str) -> Status:
        state = await self._state(tenant)
        return Status(
            running=self.running(tenant),
            scheduled=self.settings.interval_seconds > 0,
            interval_seconds=self.settings.interval_seconds,
            next_run_at=self.next_run_at,
            max_episodes_per_run=self.settings.max_episodes_per_run,
            tenant=TenantProgress(
                watermark=state.watermark,
                pass_in_progress=state.resume_cursor is not None,
                runs=state.runs or 0,
                last_run_at=state.last_run_at,
                last_result=state.last_result,
            ),
        )

    async def patterns(
        self, tenant: str, *, min_support: int = 1, limit: int = 50, cursor: str | None = None
    ) -> Page[Pattern]:
        """Tool sequences by support, most frequent first."""
        async with self.registry.db.read() as session:
            rows = list(
                await session.scalars(
                    select(PatternRow)
                    .where(PatternRow.tenant == tenant, PatternRow.support >= min_support)
                    .order_by(PatternRow.support.desc(), PatternRow.signature)
                )
            )
        items = [
            Pattern(
                signature=r.signature,
                steps=r.steps,
                support=r.support,
                sessions=len(r.sessions),
                skill_id=r.skill_id,
                first_seen_at=r.first_seen_at,
                last_seen_at=r.last_seen_at,
            )
            for r in rows
        ]
        return page_of_sequence(items, limit, cursor)


def start(registry: Registry) -> Consolidator:
    consolidator = Consolidator(registry, registry.plugin_settings(SERVICE))
    consolidator.start()
    registry.provide(SERVICE, consolidator, plugin=SERVICE)
    return consolidator
