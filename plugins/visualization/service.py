"""The views: what the memory types, the semantic graph and the request log hold, shaped for
the dashboard. Everything is read through other plugins' services (``registry.memory_types``,
``registry.services["memory"]``, ``registry.services["sessions"]``); this plugin stores nothing.

Laid-out graphs are cached per tenant and selection; a memory write of the tenant (announced
on the event bus's ``memory`` channel) drops them and is announced on ``/ws/viz`` with the nodes and edges it
changed, so a dashboard follows without reloading.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mnemogate.core.contracts import MemoryEvent, utcnow
from mnemogate.core.errors import AppError, BadRequest, Unavailable
from mnemogate.core.events import Event, Subscription
from mnemogate.core.registry import Registry
from mnemogate.plugins.visualization.models import (
    MEMORY_TYPES,
    Bucket,
    ConsolidationSeries,
    Edge,
    Graph,
    HebbianSeries,
    Histogram,
    Item,
    LitNode,
    LoggedRequest,
    MemorySeries,
    ModelUsage,
    Node,
    Point,
    Projection,
    RecallSeries,
    Selection,
    Series,
    StrengthSeries,
    Trace,
    TraceRequest,
    TraceStep,
    Usage,
    WeightChange,
)
from mnemogate.plugins.visualization.settings import VisualizationSettings

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("mnemogate.visualization")

SERVICE = "visualization"
CHANNEL = "viz"
MEMORY_CHANNEL = "memory"  # where the memory engine announces every write and recall
ACTIONS = ("created", "updated", "deleted", "recalled")
PAGE = 500  # items per list call of a memory type
LABEL_CHARS = 80
SESSION_EDGE_WEIGHT = 0.3  # consecutive episodes pull together less than explicit relations
MAX_BUCKETS = 2000
BUCKET_SECONDS = {"hour": 3600, "day": 86400}
DEFAULT_WINDOW = {"hour": timedelta(hours=48), "day": timedelta(days=30)}
ACCESS_EDGES = [0, 1, 2, 3, 5, 10, 20, 50, math.inf]
UNIT_EDGES = [round(i / 10, 1) for i in range(11)]
EVENT_NODES = 50  # nodes a live event describes at most (bulk writes: ids only)


def _label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _item(kind: str, value: Any) -> Item:
    """An ``Item`` of an episode, entity or skill (the memory types' own response models)."""
    if kind == "episodic":
        return Item(
            id=value.id,
            memory_type="episodic",
            label=_label(f"{value.actor}: {value.content}" if value.actor else value.content),
            group=value.role or "episode",
            at=value.occurred_at,
            user_id=value.user_id,
            session_id=value.session_id,
            importance=value.importance,
        )
    if kind == "semantic":
        return Item(
            id=value.id,
            memory_type="semantic",
            label=_label(value.name),
            group=value.type,
            at=value.recorded_at,
            user_id=value.user_id,
            session_id=None,
            importance=0.5,
        )
    return Item(
        id=value.id,
        memory_type="procedural",
        label=_label(value.name),
        group="skill",
        at=value.created_at,
        user_id=value.user_id,
        session_id=None,
        importance=value.stats.success_rate if value.stats.success_rate is not None else 0.5,
    )


def _in_range(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)


def _histogram(values: Iterable[float], edges: Sequence[float]) -> list[int]:
    import numpy as np  # where used: start-up does not load numpy

    counts, _ = np.histogram(np.fromiter(values, dtype=np.float64), bins=np.asarray(edges, dtype=np.float64))
    return [int(c) for c in counts]


class Buckets:
    """Fixed-width time buckets from ``since`` (floored to the bucket) to ``until``."""

    def __init__(self, bucket: Bucket, since: datetime | None, until: datetime | None) -> None:
        self.width = BUCKET_SECONDS[bucket]
        until = until or utcnow()
        since = since or until - DEFAULT_WINDOW[bucket]
        if since >= until:
            raise BadRequest("since must be before until", code="invalid_range")
        self.start = math.floor(since.timestamp() / self.width) * self.width
        self.count = math.ceil((until.timestamp() - self.start) / self.width)
        if self.count > MAX_BUCKETS:
            raise BadRequest(
                f"the range holds {self.count} {bucket}s; at most {MAX_BUCKETS} fit: narrow it or use days",
                code="too_many_buckets",
            )
        self.since, self.until = since, until

    @property
    def times(self) -> list[datetime]:
        return [datetime.fromtimestamp(self.start + i * self.width, UTC) for i in range(self.count)]

    def index(self, at: datetime | None) -> int | None:
        """The bucket of ``at``; None outside the range."""
        if at is None or at < self.since or at >= self.until:
            return None
        return min(int((at.timestamp() - self.start) // self.width), self.count - 1)

    def zeros(self) -> list[int]:
        return [0] * self.count


class VizService:
    def __init__(self, registry: Registry, settings: VisualizationSettings) -> None:
        self.registry = registry
        self.settings = settings
        self._graphs: OrderedDict[tuple[str, Selection], tuple[float, Graph]] = OrderedDict()
        self._generation: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()
        self._listener = asyncio.get_running_loop().create_task(self._listen(ready))
        await ready.wait()

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def engine(self) -> Any:
        engine = self.registry.services.get("memory")
        if engine is None:
            raise Unavailable("memory is switched off (the memory plugin is disabled)")
        return engine

    # -- reading memories ----------------------------------------------------------------------

    async def items(self, tenant: str, selection: Selection, cap: int) -> tuple[list[Item], bool]:
        """The selected memories, newest first per type, at most ``cap`` in all (the newest);
        and whether more matched."""
        found: list[Item] = []
        for kind in selection.kinds:
            memory_type = self.registry.memory_types.get(kind)
            if memory_type is None or (selection.session_id is not None and kind != "episodic"):
                continue
            filters: dict[str, Any] = {"user_id": selection.user_id}
            if kind == "episodic":
                filters.update(session_id=selection.session_id, since=selection.since, until=selection.until)
            cursor: str | None = None
            taken = 0
            while taken <= cap:
                page = await memory_type.list(tenant, limit=PAGE, cursor=cursor, filters=filters)
                for value in page.items:
                    item = _item(kind, value)
                    if _in_range(item.at, selection.since, selection.until):
                        found.append(item)
                        taken += 1
                cursor = page.next_cursor
                if cursor is None:
                    break
        found.sort(key=lambda item: item.at, reverse=True)
        return found[:cap], len(found) > cap

    async def activations(self, tenant: str, items: Sequence[Item]) -> dict[str, Any]:
        """Access history of the items (ACT-R state), by id."""
        engine = self.engine
        states: dict[str, Any] = {}
        for kind in MEMORY_TYPES:
            ids = [item.id for item in items if item.memory_type == kind]
            for start in range(0, len(ids), PAGE):
                states.update(await engine.activations(tenant, kind, ids[start : start + PAGE]))
        return states

    def _retrieval(self, states: dict[str, Any], now: datetime) -> dict[str, float]:
        """Each item's ACT-R retrieval probability now, by id, computed for all at once."""
        _, probability = self.engine.strengths(list(states.values()), now)
        return dict(zip(states, probability.tolist(), strict=True))

    async def vectors(self, tenant: str, items: Sequence[Item]) -> tuple[list[str], np.ndarray]:
        """The stored embedding vectors of the items (those that have one)."""
        import numpy as np

        engine = self.engine
        ids: list[str] = []
        blocks: list[np.ndarray] = []
        for kind in MEMORY_TYPES:
            wanted = [item.id for item in items if item.memory_type == kind]
            if not wanted:
                continue
            found, matrix = await engine.vectors(tenant, kind, wanted)
            if found and (not blocks or matrix.shape[1] == blocks[0].shape[1]):
                ids += found
                blocks.append(matrix)
        if not blocks:
            return [], np.zeros((0, 0), dtype=np.float32)
        return ids, np.vstack(blocks)

    async def relations(self, tenant: str) -> list[Any]:
        semantic = self.registry.memory_types.get("semantic")
        if semantic is None or not hasattr(semantic, "iter_relations"):
            return []
        found: list[Any] = []
        async for batch in semantic.iter_relations(tenant):
            found += batch
        return found

    # -- the graph -----------------------------------------------------------------------------

    async def graph(self, tenant: str, selection: Selection) -> Graph:
        self._drain()
        key = (tenant, selection)
        cached = self._graphs.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.settings.cache_seconds:
            self._graphs.move_to_end(key)
            return cached[1].model_copy(update={"cached": True})
        generation = self._generation.get(tenant, 0)
        graph = await self._build_graph(tenant, selection)
        if self.settings.cache_entries and self._generation.get(tenant, 0) == generation:
            self._graphs[key] = (time.monotonic(), graph)
            while len(self._graphs) > self.settings.cache_entries:
                self._graphs.popitem(last=False)
        return graph

    async def _build_graph(self, tenant: str, selection: Selection) -> Graph:
        items, truncated = await self.items(tenant, selection, selection.limit)
        position = {item.id: i for i, item in enumerate(items)}
        edges: list[Edge] = []
        if "semantic" in selection.kinds:
            for relation in await self.relations(tenant):
                if relation.source_id in position and relation.target_id in position:
                    edges.append(
                        Edge(
                            id=relation.id,
                            source=relation.source_id,
                            target=relation.target_id,
                            kind="relation",
                            type=relation.type,
                            weight=relation.weight,
                            activations=relation.activations,
                        )
                    )
        edges += _session_edges(items)
        states = await self.activations(tenant, items)
        vector_ids, matrix = await self.vectors(tenant, items)
        started = time.perf_counter()
        coordinates, steps = await asyncio.to_thread(
            self._layout, len(items), position, edges, vector_ids, matrix
        )
        layout_ms = (time.perf_counter() - started) * 1000
        now = utcnow()
        probability = self._retrieval(states, now)
        nodes = []
        for item, (x, y, z) in zip(items, coordinates.tolist(), strict=True):
            state = states.get(item.id)
            nodes.append(
                Node(
                    id=item.id,
                    memory_type=item.memory_type,
                    label=item.label,
                    group=item.group,
                    x=x,
                    y=y,
                    z=z,
                    at=item.at,
                    user_id=item.user_id,
                    session_id=item.session_id,
                    importance=state.importance if state is not None else item.importance,
                    access_count=state.access_count if state is not None else 0,
                    strength=probability.get(item.id, 0.0),
                )
            )
        counts = {kind: sum(1 for item in items if item.memory_type == kind) for kind in selection.kinds}
        return Graph(
            nodes=nodes,
            edges=edges,
            counts=counts,
            truncated=truncated,
            layout_steps=steps,
            layout_ms=round(layout_ms, 1),
            generated_at=now,
        )

    def _layout(
        self,
        n: int,
        position: dict[str, int],
        edges: Sequence[Edge],
        vector_ids: Sequence[str],
        matrix: np.ndarray,
    ) -> tuple[np.ndarray, int]:
        import numpy as np

        from mnemogate.plugins.visualization.layout import force_layout, pca_3d

        started = time.monotonic()
        initial = None
        if len(vector_ids) >= 2:
            projected, _ = pca_3d(matrix)
            spread = float(projected.std()) or 1.0
            rng = np.random.default_rng(1)
            initial = rng.normal(scale=spread, size=(n, 3))
            initial[[position[i] for i in vector_ids]] = projected
        sources = np.array([position[e.source] for e in edges], dtype=np.int64)
        targets = np.array([position[e.target] for e in edges], dtype=np.int64)
        weights = np.array([e.weight for e in edges], dtype=np.float64)
        return force_layout(
            n,
            sources,
            targets,
            weights,
            initial=initial,
            iterations=self.settings.layout_iterations,
            # One budget for the projection and the layout together; the layout keeps half of it
            # at least (a slow projection on a busy machine must not leave it no steps).
            seconds=max(
                self.settings.layout_seconds - (time.monotonic() - started), self.settings.layout_seconds / 2
            ),
        )

    # -- embeddings ----------------------------------------------------------------------------

    async def embeddings(self, tenant: str, selection: Selection) -> Projection:
        items, truncated = await self.items(tenant, selection, selection.limit)
        ids, matrix = await self.vectors(tenant, items)
        from mnemogate.plugins.visualization.layout import pca_3d

        projected, explained = await asyncio.to_thread(pca_3d, matrix)
        by_id = {item.id: item for item in items}
        points = [
            Point(id=i, memory_type=by_id[i].memory_type, label=by_id[i].label, x=x, y=y, z=z)
            for i, (x, y, z) in zip(ids, projected.tolist(), strict=True)
        ]
        return Projection(
            points=points,
            explained_variance=[float(v) for v in explained],
            dimensions=int(matrix.shape[1]) if len(ids) else 0,
            truncated=truncated,
        )

    # -- spreading activation ------------------------------------------------------------------

    async def trace(self, tenant: str, request: TraceRequest) -> Trace:
        semantic = self.registry.memory_types.get("semantic")
        if semantic is None:
            raise Unavailable("semantic memory is switched off (the semantic plugin is disabled)")
        result = await semantic.spread(tenant, request)
        nodes = [
            LitNode(id=a.entity.id, label=_label(a.entity.name), hop=a.hops, activation=a.activation)
            for a in result.activated
        ]
        steps = [
            TraceStep(
                hop=s.hop,
                relation_id=s.relation_id,
                source=s.from_id,
                target=s.to_id,
                activation=s.activation,
            )
            for s in result.trace
        ]
        changes = [
            WeightChange(
                relation_id=s.relation_id,
                source=s.source_id,
                target=s.target_id,
                before=s.weight_before,
                after=s.weight_after,
            )
            for s in result.strengthened
        ]
        return Trace(
            nodes=nodes, steps=steps, hops=max((n.hop for n in nodes), default=0), strengthened=changes
        )

    # -- time series ---------------------------------------------------------------------------

    async def series(self, tenant: str, selection: Selection, bucket: Bucket) -> Series:
        buckets = Buckets(bucket, selection.since, selection.until)
        # Every memory counts towards the totals; the range only bounds the buckets.
        everything = Selection(
            kinds=selection.kinds, user_id=selection.user_id, session_id=selection.session_id
        )
        items, truncated = await self.items(tenant, everything, self.settings.series_max_items)
        states = await self.activations(tenant, items)
        now = utcnow()
        probability = self._retrieval(states, now)
        kinds = [kind for kind in selection.kinds if kind in self.registry.memory_types]
        added = {kind: buckets.zeros() for kind in kinds}
        before = dict.fromkeys(kinds, 0)
        last_recalled = {kind: buckets.zeros() for kind in kinds}
        accesses: dict[str, list[float]] = {kind: [] for kind in kinds}
        retrieval: dict[str, list[float]] = {kind: [] for kind in kinds}
        importance: dict[str, list[float]] = {kind: [] for kind in kinds}
        archived = dict.fromkeys(kinds, 0)
        for item in items:
            state = states.get(item.id)
            entered = state.created_at if state is not None else item.at
            slot = buckets.index(entered)
            if slot is not None:
                added[item.memory_type][slot] += 1
            elif entered < buckets.since:
                before[item.memory_type] += 1
            if state is None:
                continue
            archived[item.memory_type] += state.archived_at is not None
            slot = buckets.index(state.last_accessed_at)
            if slot is not None:
                last_recalled[item.memory_type][slot] += 1
            accesses[item.memory_type].append(state.access_count)
            retrieval[item.memory_type].append(probability[item.id])
            importance[item.memory_type].append(state.importance)
        total = {}
        for kind in kinds:
            running, total[kind] = before[kind], []
            for count in added[kind]:
                running += count
                total[kind].append(running)
        return Series(
            bucket=bucket,
            since=buckets.since,
            until=buckets.until,
            times=buckets.times,
            memory=MemorySeries(added=added, total=total, archived=archived),
            recalls=RecallSeries(
                last_recalled=last_recalled,
                access_counts=Histogram(
                    edges=[e if math.isfinite(e) else 1e9 for e in ACCESS_EDGES],
                    counts={kind: _histogram(accesses[kind], ACCESS_EDGES) for kind in kinds},
                ),
                recalls_total={kind: int(sum(accesses[kind])) for kind in kinds},
            ),
            strength=StrengthSeries(
                retrieval=Histogram(
                    edges=UNIT_EDGES, counts={kind: _histogram(retrieval[kind], UNIT_EDGES) for kind in kinds}
                ),
                importance=Histogram(
                    edges=UNIT_EDGES,
                    counts={kind: _histogram(importance[kind], UNIT_EDGES) for kind in kinds},
                ),
            ),
            hebbian=await self._hebbian(tenant, buckets, selection),
            consolidation=await self._consolidation(tenant),
            truncated=truncated,
        )

    async def _hebbian(self, tenant: str, buckets: Buckets, selection: Selection) -> HebbianSeries:
        relations = await self.relations(tenant) if "semantic" in selection.kinds else []
        strengthened = buckets.zeros()
        for relation in relations:
            slot = buckets.index(relation.updated_at) if relation.activations else None
            if slot is not None:
                strengthened[slot] += 1
        return HebbianSeries(
            strengthened=strengthened,
            weights=Histogram(
                edges=UNIT_EDGES, counts={"relations": _histogram((r.weight for r in relations), UNIT_EDGES)}
            ),
            activations_total=sum(r.activations for r in relations),
            relations=len(relations),
        )

    async def _consolidation(self, tenant: str) -> ConsolidationSeries:
        """What the ``consolidation`` service records of the tenant's runs, when it runs."""
        consolidation = self.registry.services.get("consolidation")
        if consolidation is None:
            return ConsolidationSeries(available=False)
        progress = (await consolidation.status(tenant)).tenant
        return ConsolidationSeries(
            available=True,
            runs=progress.runs,
            last_run_at=progress.last_run_at,
            last_result=progress.last_result,
        )

    # -- gateway usage -------------------------------------------------------------------------

    async def usage(
        self,
        tenant: str,
        bucket: Bucket,
        since: datetime | None,
        until: datetime | None,
        session_id: str | None,
    ) -> Usage:
        sessions = self.registry.services.get("sessions")
        if sessions is None:
            raise Unavailable("the request log is switched off (the sessions plugin is disabled)")
        buckets = Buckets(bucket, since, until)
        requests, errors, tokens_in, tokens_out = (buckets.zeros() for _ in range(4))
        cost = [0.0] * buckets.count
        models: dict[str, ModelUsage] = {}
        recent: deque[dict[str, Any]] = deque(maxlen=self.settings.recent_requests)
        async for record in sessions.iter_requests(
            tenant, since=buckets.since, until=buckets.until, session_id=session_id
        ):
            slot = buckets.index(record["created_at"])
            if slot is None:
                continue
            requests[slot] += 1
            errors[slot] += record["status"] >= 400
            tokens_in[slot] += record["tokens_in"] or 0
            tokens_out[slot] += record["tokens_out"] or 0
            cost[slot] += record["cost_usd"] or 0.0
            name = f"{record['provider']}/{record['model']}" if record["provider"] else record["model"] or "?"
            usage = models.setdefault(
                name, ModelUsage(model=name, requests=0, tokens_in=0, tokens_out=0, cost_usd=0)
            )
            usage.requests += 1
            usage.tokens_in += record["tokens_in"] or 0
            usage.tokens_out += record["tokens_out"] or 0
            usage.cost_usd += record["cost_usd"] or 0.0
            recent.append(record)
        return Usage(
            bucket=bucket,
            since=buckets.since,
            until=buckets.until,
            times=buckets.times,
            requests=requests,
            errors=errors,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=[round(c, 6) for c in cost],
            models=sorted(models.values(), key=lambda m: -m.requests),
            recent=[LoggedRequest.model_validate(r) for r in reversed(recent)],
        )

    def forget(self) -> None:
        """Drop every cached graph (the database's contents were replaced)."""
        for tenant in {key[0] for key in self._graphs}:
            self._generation[tenant] = self._generation.get(tenant, 0) + 1
        self._graphs.clear()

    # -- live changes --------------------------------------------------------------------------

    async def _listen(self, ready: asyncio.Event) -> None:
        """Follow the memory channel of every tenant (through the bus, so a shared bus brings
        other instances' writes too)."""
        async with self.registry.events.subscribe(MEMORY_CHANNEL, None) as subscription:
            self._subscription = subscription
            ready.set()
            while True:
                self._apply(await subscription.get())

    def _drain(self) -> None:
        """Apply events already delivered but not yet handled, so a read right after a write
        never sees the graph from before it."""
        subscription = self._subscription
        while subscription is not None and not subscription.queue.empty():
            self._apply(subscription.queue.get_nowait())

    def _apply(self, event: Event) -> None:
        """Drop the tenant's cached graphs (recalls change no structure) and announce the
        change on ``/ws/viz``, off the write's path."""
        data = dict(event.data)
        kind, ids = data.pop("memory_type", None), data.pop("ids", [])
        if kind not in MEMORY_TYPES or event.type not in ACTIONS:
            return
        if event.type != "recalled":
            self._generation[event.tenant] = self._generation.get(event.tenant, 0) + 1
            for key in [key for key in self._graphs if key[0] == event.tenant]:
                del self._graphs[key]
        change = MemoryEvent(tenant=event.tenant, memory_type=kind, action=event.type, ids=ids, data=data)
        task = asyncio.get_running_loop().create_task(self._announce(change))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self, event: MemoryEvent) -> None:
        try:
            data = await self._change(event)
            await self.registry.events.publish(CHANNEL, "graph.changed", event.tenant, data)
        except Exception as exc:
            log.warning("announcing a %s change failed: %s", event.memory_type, type(exc).__name__)

    async def _change(self, event: MemoryEvent) -> dict[str, Any]:
        """What changed, as nodes and edges of the graph (up to EVENT_NODES of them described)."""
        data: dict[str, Any] = {
            "memory_type": event.memory_type,
            "action": event.action,
            "ids": event.ids,
            "nodes": [],
            "edges": [],
        }
        extra = event.data
        if event.memory_type == "semantic" and "relation" in extra and event.action == "created":
            data["edges"] = [
                {
                    "id": event.ids[0],
                    "source": extra["source_id"],
                    "target": extra["target_id"],
                    "kind": "relation",
                    "type": extra["relation"],
                    "weight": extra["weight"],
                }
            ]
        elif event.memory_type == "semantic" and "weights" in extra:
            data["weights"] = extra["weights"]
        elif event.action in ("created", "updated"):
            for item in await self._described(event.memory_type, event.tenant, event.ids[:EVENT_NODES]):
                data["nodes"].append(
                    {
                        "id": item.id,
                        "memory_type": item.memory_type,
                        "label": item.label,
                        "group": item.group,
                        "at": item.at.isoformat(),
                        "session_id": item.session_id,
                        "user_id": item.user_id,
                        "importance": item.importance,
                    }
                )
        return data

    async def _described(self, kind: str, tenant: str, ids: Sequence[str]) -> list[Item]:
        """The items of ``ids`` still stored. In one read where the memory type offers
        ``get_many`` (episodes come in batches: a read per item would cost the batch write
        about as much as its own work), else item by item."""
        memory_type = self.registry.memory_types[kind]
        get_many = getattr(memory_type, "get_many", None)
        if get_many is not None:
            return [_item(kind, value) for value in await get_many(tenant, ids)]
        items = []
        for item_id in ids:
            try:
                items.append(_item(kind, await memory_type.get(tenant, item_id)))
            except AppError:
                continue  # deleted meanwhile
        return items


def _session_edges(items: Sequence[Item]) -> list[Edge]:
    """Consecutive episodes of each session, linked in time order."""
    by_session: dict[str, list[Item]] = {}
    for item in items:
        if item.memory_type == "episodic" and item.session_id:
            by_session.setdefault(item.session_id, []).append(item)
    edges = []
    for session, episodes in by_session.items():
        episodes.sort(key=lambda item: (item.at, item.id))
        for first, second in itertools.pairwise(episodes):
            edges.append(
                Edge(
                    id=f"{first.id}>{second.id}",
                    source=first.id,
                    target=second.id,
                    kind="session",
                    type=session,
                    weight=SESSION_EDGE_WEIGHT,
                    activations=0,
                )
            )
    return edges


async def start(registry: Registry) -> VizService:
    service = VizService(registry, registry.plugin_settings(SERVICE))
    await service.start()
    registry.provide(SERVICE, service, plugin=SERVICE)
    return service
