"""What the memory routes compute. Everything goes through other plugins' services: the memory
types (``registry.memory_types``), the memory engine (embeddings, activation records, archive),
the consolidation service (clustering, patterns, promotion), the memory bridge (injection log),
the MCP gateway (configured servers) and sessions (which sessions still exist).

Statistics read at most ``scan_limit`` most recent episodes, and what embeds episodes
(compression, similar sessions, duplication) at most ``session_limit``; answers say how many
they read.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from mnemogate.core.contracts import EntityDraft, EpisodeDraft, SkillDraft, utcnow
from mnemogate.core.errors import BadRequest, NotFound, Unavailable
from mnemogate.core.pagination import Page, page_of_sequence
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_memory.models import (
    AdvancedStats,
    CleanupRequest,
    CleanupResult,
    Cluster,
    ClusterResult,
    CompressRequest,
    CompressResult,
    DecayState,
    Distribution,
    KindStats,
    Merge,
    ServerMemories,
    SessionMemory,
    SimilarityRequest,
    SimilarityResult,
    SimilarMemory,
    SimilarSession,
    SimilarSessions,
    Stats,
    Stored,
    StoreRequest,
    Summary,
)
from mnemogate.plugins.mcp_memory.settings import McpMemorySettings

SERVICE = "mcp_memory"
PAGE = 500
AGE_BUCKETS = (
    (timedelta(hours=1), "<1h"),
    (timedelta(days=1), "<1d"),
    (timedelta(days=7), "<7d"),
    (timedelta(days=30), "<30d"),
)
ACCESS_BUCKETS = ((0, "0"), (1, "1"), (5, "2-5"), (20, "6-20"))


class EpisodeChanges(BaseModel):
    """What a merge changes on the episode it keeps (the episodic ``update`` reads it)."""

    importance: float | None = None
    metadata: dict[str, Any] | None = None


def _line(episode: Any) -> str:
    return f"{episode.actor}: {episode.content}" if episode.actor else episode.content


def _bucket(value: float, buckets: Sequence[tuple[Any, str]], last: str) -> str:
    return next((name for bound, name in buckets if value <= bound), last)


def _expired(episode: Any, now: datetime, before: datetime | None) -> bool:
    expires = (episode.metadata or {}).get("expires_at")
    if isinstance(expires, str):
        try:
            stamp = datetime.fromisoformat(expires.replace("Z", "+00:00"))
            if stamp.tzinfo is not None and stamp <= now:
                return True
        except ValueError:
            pass
    return before is not None and episode.occurred_at < before


class MemoryInsights:
    def __init__(self, registry: Registry, settings: McpMemorySettings) -> None:
        self.registry = registry
        self.settings = settings

    # -- reaching other plugins ----------------------------------------------------------------

    def _type(self, name: str) -> Any:
        service = self.registry.memory_types.get(name)
        if service is None:
            raise Unavailable(f"the {name} memory plugin is switched off")
        return service

    @property
    def episodes(self) -> Any:
        return self._type("episodic")

    @property
    def engine(self) -> Any:
        return self.registry.services["memory"]

    @property
    def consolidation(self) -> Any:
        service = self.registry.services.get("consolidation")
        if service is None:
            raise Unavailable("the consolidation plugin is switched off")
        return service

    def configured_servers(self) -> list[str]:
        return sorted(self.registry.mcp_servers)

    async def scan(
        self, tenant: str, limit: int, filters: dict[str, Any] | None = None
    ) -> tuple[list[Any], bool]:
        """Up to ``limit`` most recent episodes, and whether more exist."""
        found: list[Any] = []
        cursor = None
        while len(found) < limit:
            page = await self.episodes.list(
                tenant, limit=min(PAGE, limit - len(found)), cursor=cursor, filters=filters
            )
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                return found, False
        return found, True

    async def _session(self, tenant: str, session_id: str) -> list[Any]:
        found, _ = await self.scan(tenant, self.settings.session_limit, {"session_id": session_id})
        if not found:
            raise NotFound(f"no episodes in session {session_id}")
        return found

    async def _vectors(self, episodes: Sequence[Any]) -> Any:
        return await self.engine.embedder.embed([_line(e) for e in episodes])

    # -- a session -----------------------------------------------------------------------------

    async def session_memory(
        self, tenant: str, session_id: str, limit: int, cursor: str | None
    ) -> SessionMemory:
        page = await self.episodes.list(
            tenant, limit=limit, cursor=cursor, filters={"session_id": session_id}
        )
        bridge = self.registry.services.get("memory_bridge")
        injections: list[dict[str, Any]] = []
        if bridge is not None and cursor is None:
            logged = await bridge.injections(tenant, session_id, limit=20, cursor=None)
            injections = [i.model_dump(mode="json") for i in logged.items]
        return SessionMemory(
            session_id=session_id,
            items=[e.model_dump(mode="json") for e in page.items],
            next_cursor=page.next_cursor,
            injections=injections,
        )

    async def cluster_session(self, tenant: str, session_id: str, threshold: float | None) -> ClusterResult:
        episodes = await self._session(tenant, session_id)
        episodes.sort(key=lambda e: (e.occurred_at, e.id))
        consolidation = self.consolidation
        groups = await consolidation.cluster_texts(
            [_line(e) for e in episodes], threshold or self.settings.cluster_threshold
        )
        clusters = []
        for group in sorted(groups, key=lambda g: (-len(g), g[0])):
            words = consolidation.label([episodes[i].content for i in group])
            clusters.append(
                Cluster(
                    label=" / ".join(words) or episodes[group[0]].content[:40],
                    keywords=words,
                    size=len(group),
                    episode_ids=[episodes[i].id for i in group],
                    sample=episodes[group[0]].content[:200],
                )
            )
        return ClusterResult(session_id=session_id, episodes=len(episodes), clusters=clusters)

    async def similar_sessions(self, tenant: str, session_id: str, k: int) -> SimilarSessions:
        import numpy as np

        target = await self._session(tenant, session_id)
        others, _ = await self.scan(tenant, self.settings.session_limit)
        others = [e for e in others if e.session_id and e.session_id != session_id]
        by_session: dict[str, list[int]] = defaultdict(list)
        for index, episode in enumerate(others):
            by_session[episode.session_id].append(index)
        if not by_session:
            return SimilarSessions(session_id=session_id, items=[], scanned=len(others))
        mine = np.asarray(await self._vectors(target)).mean(axis=0)
        mine /= np.linalg.norm(mine) or 1.0
        vectors = np.asarray(await self._vectors(others))
        items = []
        for other, indices in by_session.items():
            centroid = vectors[indices].mean(axis=0)
            norm = float(np.linalg.norm(centroid)) or 1.0
            items.append(
                SimilarSession(
                    session_id=other,
                    similarity=round(float(centroid @ mine) / norm, 6),
                    episodes=len(indices),
                )
            )
        items.sort(key=lambda s: (-s.similarity, s.session_id))
        return SimilarSessions(session_id=session_id, items=items[:k], scanned=len(others))

    async def promote(self, tenant: str, session_id: str) -> dict[str, Any]:
        """Consolidation's run result for the session (entities, relations, skills created)."""
        return (await self.consolidation.promote_session(tenant, session_id)).model_dump(mode="json")

    # -- statistics ----------------------------------------------------------------------------

    async def stats(self, tenant: str) -> Stats:
        rows = await self.engine.activation_rows(tenant)
        by_type: dict[str, KindStats] = {}
        for kind, _, state in rows:
            current = by_type.setdefault(kind, KindStats(items=0, archived=0, never_recalled=0, accesses=0))
            current.items += 1
            current.archived += state.archived_at is not None
            current.never_recalled += state.access_count == 0
            current.accesses += state.access_count
        episodes, truncated = await self.scan(tenant, self.settings.scan_limit)
        sources = Counter((e.metadata or {}).get("source") for e in episodes)
        captured = {"gateway": sources.pop("gateway", 0), "mcp": sources.pop("mcp", 0)}
        captured["other"] = sum(sources.values())
        return Stats(
            total=len(rows),
            by_type=by_type,
            sessions=len({e.session_id for e in episodes if e.session_id}),
            captured=captured,
            scanned=len(episodes),
            truncated=truncated,
        )

    async def advanced_stats(self, tenant: str) -> AdvancedStats:
        import numpy as np

        now = utcnow()
        rows = await self.engine.activation_rows(tenant)
        age: dict[str, Counter[str]] = defaultdict(Counter)
        access: dict[str, Counter[str]] = defaultdict(Counter)
        archived = never = due = 0
        consolidation = self.registry.services.get("consolidation")
        decay_settings = consolidation.settings if consolidation is not None else None
        for kind, _, state in rows:
            age[kind][_bucket(now - state.created_at, AGE_BUCKETS, ">=30d")] += 1
            access[kind][_bucket(state.access_count, ACCESS_BUCKETS, ">20")] += 1
            archived += state.archived_at is not None
            if state.access_count == 0 and state.archived_at is None:
                never += 1
                if (
                    decay_settings is not None
                    and kind in decay_settings.archive_types
                    and now - state.created_at > timedelta(days=decay_settings.archive_after_days)
                    and state.importance <= decay_settings.archive_max_importance
                ):
                    due += 1
        episodes, _ = await self.scan(tenant, self.settings.session_limit)
        ratio, clusters = 0.0, 0
        if episodes:
            vectors = np.asarray(await self._vectors(episodes))
            similarity = vectors @ vectors.T
            np.fill_diagonal(similarity, 0.0)
            ratio = float((similarity >= self.settings.duplicate_threshold).any(axis=1).mean())
            if consolidation is not None:
                clusters = len(
                    await consolidation.cluster_texts(
                        [_line(e) for e in episodes], self.settings.cluster_threshold
                    )
                )
        return AdvancedStats(
            total=len(rows),
            age={kind: Distribution(buckets=dict(counts)) for kind, counts in age.items()},
            access={kind: Distribution(buckets=dict(counts)) for kind, counts in access.items()},
            duplication_ratio=round(ratio, 6),
            clusters=clusters,
            decay=DecayState(archived=archived, never_recalled=never, due_for_archive=due),
            scanned=len(episodes),
        )

    # -- MCP servers ---------------------------------------------------------------------------

    async def _server_memories(self, tenant: str) -> dict[str, ServerMemories]:
        episodes, _ = await self.scan(tenant, self.settings.scan_limit)
        configured = set(self.configured_servers())
        servers: dict[str, ServerMemories] = {}
        for episode in episodes:
            meta = episode.metadata or {}
            server = meta.get("server")
            if not isinstance(server, str):
                continue
            entry = servers.get(server)
            if entry is None:
                entry = servers[server] = ServerMemories(
                    server=server,
                    memories=0,
                    tools={},
                    failures=0,
                    last_at=None,
                    configured=server in configured,
                )
            entry.memories += 1
            tool = str(meta.get("tool") or "")
            if tool:
                entry.tools[tool] = entry.tools.get(tool, 0) + 1
            entry.failures += episode.outcome == "failure"
            if entry.last_at is None or episode.occurred_at > entry.last_at:
                entry.last_at = episode.occurred_at
        return servers

    async def servers(self, tenant: str, limit: int, cursor: str | None) -> Page[ServerMemories]:
        servers = await self._server_memories(tenant)
        ranked = sorted(servers.values(), key=lambda s: (-s.memories, s.server))
        return page_of_sequence(ranked, limit, cursor)

    async def all_servers(self, tenant: str, limit: int, cursor: str | None) -> Page[ServerMemories]:
        servers = await self._server_memories(tenant)
        items = [
            servers.get(name)
            or ServerMemories(server=name, memories=0, tools={}, failures=0, last_at=None, configured=True)
            for name in self.configured_servers()
        ]
        return page_of_sequence(items, limit, cursor)

    # -- similarity, store, patterns -----------------------------------------------------------

    async def similarity(self, tenant: str, request: SimilarityRequest) -> SimilarityResult:
        if request.other is not None:
            vectors = await self.engine.embedder.embed([request.text, request.other])
            return SimilarityResult(similarity=round(float(vectors[0] @ vectors[1]), 6))
        matches: list[SimilarMemory] = []
        for kind in dict.fromkeys(request.types):
            for found in await self._type(kind).recall(tenant, request.text, k=request.k):
                if kind == "episodic":
                    item_id, text = found.episode.id, found.episode.content
                elif kind == "semantic":
                    item_id, text = found.entity.id, f"{found.entity.name}: {found.entity.description}"
                else:
                    item_id, text = found.skill.id, f"{found.skill.name}: {found.skill.description}"
                matches.append(SimilarMemory(type=kind, id=item_id, score=round(found.score, 6), text=text))
        matches.sort(key=lambda m: -m.score)
        return SimilarityResult(matches=matches[: request.k])

    async def store(self, tenant: str, request: StoreRequest) -> Stored:
        meta = {**request.metadata, "source": "mcp_memory"}
        if request.server:
            meta["server"] = request.server
        if request.tool:
            meta["tool"] = request.tool
        name = request.name or " ".join(request.content.split()[:8])[:200]
        if request.memory_type == "episodic":
            actor = "/".join(p for p in (request.server, request.tool) if p) or None
            draft = EpisodeDraft(
                content=request.content,
                session_id=request.session_id,
                actor=actor,
                role="memory",
                importance=request.importance,
                metadata=meta,
            )
            item = (await self.episodes.add_many(tenant, [draft]))[0]
        elif request.memory_type == "semantic":
            if request.session_id:
                meta["session_id"] = request.session_id
            item = await self._type("semantic").add(
                tenant, EntityDraft(name=name, description=request.content, metadata=meta)
            )
        else:
            if request.session_id:
                meta["session_id"] = request.session_id
            tags = [request.server] if request.server else []
            item = await self._type("procedural").add(
                tenant, SkillDraft(name=name, description=request.content, tags=tags, metadata=meta)
            )
        return Stored(memory_type=request.memory_type, id=item.id, item=item.model_dump(mode="json"))

    async def frequent(self, tenant: str, min_support: int, limit: int, cursor: str | None) -> Page[Any]:
        return await self.consolidation.patterns(tenant, min_support=min_support, limit=limit, cursor=cursor)

    # -- maintenance ---------------------------------------------------------------------------

    async def compress(self, tenant: str, request: CompressRequest) -> CompressResult:
        import numpy as np

        filters = {"session_id": request.session_id} if request.session_id else None
        episodes, _ = await self.scan(tenant, self.settings.session_limit, filters)
        episodes.sort(key=lambda e: (e.occurred_at, e.id))
        result = CompressResult(
            dry_run=request.dry_run, scanned=len(episodes), merges=[], summaries=[], removed=0, archived=0
        )
        if not episodes:
            return result
        threshold = request.duplicate_threshold or self.settings.duplicate_threshold
        vectors = np.asarray(await self._vectors(episodes))
        similarity = vectors @ vectors.T
        merged_into: dict[int, int] = {}
        # Of near-duplicates, the most important one is kept (the oldest among equals).
        order = sorted(range(len(episodes)), key=lambda i: (-episodes[i].importance, i))
        done: set[int] = set()
        for i in order:
            if i in done:
                continue
            done.add(i)
            twins = [j for j in order if j not in done and similarity[i, j] >= threshold]
            if twins:
                done.update(twins)
                for j in twins:
                    merged_into[j] = i
                result.merges.append(
                    Merge(
                        kept=episodes[i].id,
                        merged=[episodes[j].id for j in twins],
                        similarity=round(float(min(similarity[i, j] for j in twins)), 6),
                    )
                )
        remaining = [i for i in range(len(episodes)) if i not in merged_into]
        consolidation = self.consolidation
        groups = await consolidation.cluster_texts(
            [_line(episodes[i]) for i in remaining],
            request.cluster_threshold or self.settings.cluster_threshold,
        )
        for group in groups:
            if len(group) < request.min_cluster_size:
                continue
            members = [episodes[remaining[g]] for g in group]
            words = consolidation.label([m.content for m in members])
            centre = vectors[[remaining[g] for g in group]].mean(axis=0)
            central = members[int(np.argmax(vectors[[remaining[g] for g in group]] @ centre))]
            content = f"Summary of {len(members)} episodes about {', '.join(words)}: {central.content}"[
                :20_000
            ]
            result.summaries.append(
                Summary(label=" / ".join(words), members=[m.id for m in members], content=content)
            )
        if not request.dry_run:
            await self._apply_compression(tenant, episodes, result, request.session_id)
        return result

    async def _apply_compression(
        self, tenant: str, episodes: list[Any], result: CompressResult, session_id: str | None
    ) -> None:
        by_id = {e.id: e for e in episodes}
        for merge in result.merges:
            kept = by_id[merge.kept]
            importance = max([kept.importance, *(by_id[m].importance for m in merge.merged)])
            metadata = {
                **(kept.metadata or {}),
                "merged": [*(kept.metadata or {}).get("merged", []), *merge.merged],
            }
            await self.episodes.update(
                tenant, kept.id, EpisodeChanges(importance=importance, metadata=metadata)
            )
            for duplicate in merge.merged:
                await self.episodes.delete(tenant, duplicate)
                result.removed += 1
        for summary in result.summaries:
            draft = EpisodeDraft(
                content=summary.content,
                session_id=session_id,
                actor="mnemogate",
                role="summary",
                metadata={"source": "compress", "members": summary.members},
            )
            summary.summary_id = (await self.episodes.add_many(tenant, [draft]))[0].id
            result.archived += await self.engine.archive(tenant, "episodic", summary.members)

    async def cleanup(self, tenant: str, request: CleanupRequest) -> CleanupResult:
        if not (request.expired or request.duplicates or request.orphaned):
            raise BadRequest("choose at least one of expired, duplicates, orphaned")
        episodes, _ = await self.scan(tenant, self.settings.scan_limit)
        episodes.sort(key=lambda e: (e.occurred_at, e.id))
        now = utcnow()
        before = now - timedelta(days=request.older_than_days) if request.older_than_days else None
        result = CleanupResult(
            dry_run=request.dry_run, scanned=len(episodes), expired=[], duplicates=[], orphaned=[], removed=0
        )
        doomed: set[str] = set()
        if request.expired:
            result.expired = [e.id for e in episodes if _expired(e, now, before)]
            doomed.update(result.expired)
        if request.duplicates:
            seen: set[tuple[Any, ...]] = set()
            for episode in episodes:
                key = (episode.session_id, episode.role, episode.actor, episode.content)
                if key in seen and episode.id not in doomed:
                    result.duplicates.append(episode.id)
                    doomed.add(episode.id)
                seen.add(key)
        if request.orphaned:
            gone = await self._missing_sessions(tenant, {e.session_id for e in episodes if e.session_id})
            result.orphaned = [
                e.id
                for e in episodes
                if e.session_id in gone
                and (e.metadata or {}).get("source") in ("gateway", "mcp")
                and e.id not in doomed
            ]
            doomed.update(result.orphaned)
        if not request.dry_run:
            for episode_id in sorted(doomed):
                try:
                    await self.episodes.delete(tenant, episode_id)
                except NotFound:
                    continue  # deleted meanwhile
                result.removed += 1
        return result

    async def _missing_sessions(self, tenant: str, session_ids: set[str]) -> set[str]:
        """Gateway sessions (UUIDs) the sessions plugin no longer knows."""
        sessions = self.registry.services.get("sessions")
        if sessions is None:
            return set()
        missing = set()
        for session_id in session_ids:
            try:
                uuid.UUID(session_id)
            except ValueError:
                continue
            try:
                await sessions.get(tenant, session_id)
            except NotFound:
                missing.add(session_id)
        return missing


def start(registry: Registry) -> MemoryInsights:
    insights = MemoryInsights(registry, registry.plugin_settings(SERVICE))
    registry.provide(SERVICE, insights, plugin=SERVICE)
    return insights
