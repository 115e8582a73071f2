"""Compaction of gateway requests: per-session budgets, auto mode, the history of compactions.

Budgets: a session's context window comes from the model catalogue (``ctx.model_info``), else
``context_window``; the threshold is ``max(window - 40k, 0.8 x window)`` but never more than the
window minus the reserved tokens; a compaction aims at ``target_ratio`` of the threshold.

Auto mode runs in ``chat_request`` (before compression and masking). A request whose text is
shorter than the threshold in characters cannot be over it in tokens, so most requests cost a
length sum; longer ones are counted, and a request continuing the session's last one only has
its new messages counted. A compaction is remembered per session with the conversation prefix it replaced
(its length and hash): the next turns of that conversation start with the same prefix, which is
swapped for the remembered compaction without compacting again; only when they outgrow the
threshold once more is the (already compacted) conversation compacted anew.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mnemogate.core import tokens
from mnemogate.core.contracts import ChatContext, CompactionResult, CompactionStrategy, Principal, utcnow
from mnemogate.core.db import Database
from mnemogate.core.errors import BadRequest, NotFound, describe_exception
from mnemogate.core.events import Events
from mnemogate.core.pagination import Page, newest_first, page_of_rows
from mnemogate.plugins.compaction import strategies
from mnemogate.plugins.compaction.models import (
    AutoStatus,
    ChartPoint,
    CompactResult,
    ConfigUI,
    Preview,
    Record,
    RecordRow,
    SessionConfigRow,
    Simulation,
    SimulationResult,
    Stats,
)
from mnemogate.plugins.compaction.settings import CompactionSettings

log = logging.getLogger("mnemogate.compaction")

SERVICE = "compaction"
DATA_KEY = "compaction"
CHANNEL = "gateway"  # /ws
HEADROOM = 40_000


@dataclass(slots=True)
class SessionConfig:
    auto: bool | None = None
    reserved_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    window: int
    reserved: int
    threshold: int
    target: int


@dataclass(slots=True)
class Remembered:
    """A session's last request (for previews) and last compaction (to reuse it)."""

    messages: list[dict[str, Any]] | None = None
    model_window: int | None = None
    prefix_length: int = 0
    prefix_hash: bytes = b""
    compacted: list[dict[str, Any]] | None = None
    counted_length: int = 0
    counted_hash: bytes = b""
    counted_tokens: int = 0

    def count(self, messages: list[dict[str, Any]]) -> int:
        """Tokens of ``messages``; when they continue the last counted list, only the new
        messages are counted (hashing is far cheaper than tokenising)."""
        known = self.counted_length
        if known and known <= len(messages) and _digest(messages[:known]) == self.counted_hash:
            total = self.counted_tokens + strategies.count(messages[known:])
        else:
            total = strategies.count(messages)
        self.counted_length, self.counted_hash, self.counted_tokens = len(messages), _digest(messages), total
        return total


def budget_for(window: int, reserved: int, threshold: int | None = None, ratio: float = 0.6) -> Budget:
    usable = max(window - reserved, 1)
    limit = min(threshold if threshold is not None else max(window - HEADROOM, int(0.8 * window)), usable)
    return Budget(window, reserved, limit, max(int(limit * ratio), 1))


def _digest(messages: Sequence[Any]) -> bytes:
    return hashlib.blake2b(orjson.dumps(list(messages)), digest_size=16).digest()


def _chars(messages: Sequence[Any]) -> int:
    total = 0
    for message in messages:
        if isinstance(message, dict):
            total += len(tokens.message_text(message.get("content"))) + 8
            for call in message.get("tool_calls") or ():
                if isinstance(call, dict):
                    function = call.get("function") or {}
                    total += len(str(function.get("name", ""))) + len(str(function.get("arguments", "")))
    return total


def _record(row: RecordRow) -> Record:
    return Record(
        id=row.id,
        session_id=row.session_id,
        strategy=row.strategy,
        trigger=row.trigger,
        tokens_before=row.tokens_before,
        tokens_after=row.tokens_after,
        saved_tokens=row.tokens_before - row.tokens_after,
        messages_before=row.messages_before,
        messages_after=row.messages_after,
        duration_ms=row.duration_ms,
        at=row.at,
    )


class CompactionService:
    def __init__(
        self,
        db: Database,
        events: Events,
        settings: CompactionSettings,
        registered: dict[str, Any],
        services: dict[str, Any],
    ) -> None:
        self.db = db
        self.events = events
        self.settings = settings
        self.services = services  # the registry's: sessions, sanitizer
        self.strategies: dict[str, CompactionStrategy] = {}
        for name, strategy in registered.items():
            if isinstance(strategy, CompactionStrategy):
                self.strategies[name] = strategy
            else:
                log.warning("strategy %r does not implement CompactionStrategy; compaction skips it", name)
        if settings.strategy not in self.strategies:
            raise ValueError(
                f"plugins.compaction.strategy {settings.strategy!r} is not a registered strategy"
            )
        self.configs: dict[tuple[str, str], SessionConfig] = {}
        self.remembered: OrderedDict[tuple[str, str], Remembered] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        async with self.db.read() as session:
            for row in (await session.scalars(select(SessionConfigRow))).all():
                self.configs[(row.tenant, row.session_id)] = SessionConfig(row.auto, row.reserved_tokens)

    async def stop(self) -> None:
        await self.settle()

    async def settle(self) -> None:
        """Wait for the records auto mode is still writing (reads call this first)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- budgets -------------------------------------------------------------------------------

    def config_of(self, tenant: str, session_id: str) -> SessionConfig:
        return self.configs.get((tenant, session_id)) or SessionConfig()

    def _memory(self, tenant: str, session_id: str) -> Remembered:
        key = (tenant, session_id)
        remembered = self.remembered.get(key)
        if remembered is None:
            remembered = self.remembered[key] = Remembered()
            while len(self.remembered) > self.settings.remembered_sessions:
                self.remembered.popitem(last=False)
        else:
            self.remembered.move_to_end(key)
        return remembered

    def budget(self, tenant: str, session_id: str, window: int | None = None) -> Budget:
        config = self.config_of(tenant, session_id)
        if window is None:
            remembered = self.remembered.get((tenant, session_id))
            window = remembered.model_window if remembered is not None else None
        reserved = (
            config.reserved_tokens if config.reserved_tokens is not None else self.settings.reserved_tokens
        )
        return budget_for(window or self.settings.context_window, reserved, ratio=self.settings.target_ratio)

    def strategy(self, name: str | None) -> CompactionStrategy:
        chosen = name or self.settings.strategy
        strategy = self.strategies.get(chosen)
        if strategy is None:
            raise BadRequest(
                f"unknown strategy {chosen!r}; known: {', '.join(sorted(self.strategies))}",
                code="unknown_strategy",
            )
        return strategy

    # -- auto mode (the request path) ----------------------------------------------------------

    async def auto(self, ctx: ChatContext) -> None:
        messages = ctx.body.get("messages")
        if not ctx.session_id or not isinstance(messages, list):
            return
        tenant, session_id = ctx.tenant, ctx.session_id
        memory = self._memory(tenant, session_id)
        memory.messages = messages
        window = ctx.model_info.context_window if ctx.model_info is not None else None
        if window:
            memory.model_window = window
        config = self.config_of(tenant, session_id)
        if not (config.auto if config.auto is not None else self.settings.auto):
            return
        budget = self.budget(tenant, session_id, window)
        reused = False
        if (
            memory.compacted is not None
            and len(messages) >= memory.prefix_length
            and _digest(messages[: memory.prefix_length]) == memory.prefix_hash
        ):
            messages = memory.compacted + messages[memory.prefix_length :]
            reused = True
        # a token is at least one character: shorter texts cannot be over the threshold
        if _chars(messages) <= budget.threshold or memory.count(messages) <= budget.threshold:
            if reused:
                ctx.body["messages"] = messages
                ctx.data[DATA_KEY] = {"reused": True}
            return
        original = ctx.body["messages"]
        result, duration = await self._run(self.strategy(None), messages, budget.target)
        memory.prefix_length, memory.prefix_hash = len(original), _digest(original)
        memory.compacted = result.messages
        ctx.body["messages"] = result.messages
        ctx.data[DATA_KEY] = {
            "reused": False,
            "tokens_before": result.tokens_before,
            "tokens_after": result.tokens_after,
        }
        self._spawn(
            self._save(tenant, session_id, self.settings.strategy, "auto", messages, result, duration)
        )

    async def _run(
        self, strategy: CompactionStrategy, messages: list[dict[str, Any]], budget: int
    ) -> tuple[CompactionResult, float]:
        began = time.perf_counter()
        if self.settings.summary_model:
            # the summary model is called through the event loop, which this thread must not block
            result = await asyncio.to_thread(
                strategy.compact, messages, budget=budget, count_tokens=tokens.count_text
            )
        else:
            result = strategy.compact(messages, budget=budget, count_tokens=tokens.count_text)
        return result, (time.perf_counter() - began) * 1000

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(
        self,
        tenant: str,
        session_id: str,
        strategy: str,
        trigger: str,
        before: list[dict[str, Any]],
        result: CompactionResult,
        duration_ms: float,
    ) -> Record | None:
        row = RecordRow(
            id=str(uuid.uuid4()),
            tenant=tenant,
            session_id=session_id,
            strategy=strategy,
            trigger=trigger,
            tokens_before=result.tokens_before,
            tokens_after=result.tokens_after,
            messages_before=len(before),
            messages_after=len(result.messages),
            duration_ms=round(duration_ms, 3),
            at=utcnow(),
        )
        try:
            async with self.db.write() as session:
                session.add(row)
        except Exception as exc:
            log.error("recording a compaction failed: %s", describe_exception(exc))
            return None
        record = _record(row)
        await self.events.publish(CHANNEL, "compaction.done", tenant, record.model_dump(mode="json"))
        return record

    # -- the API -------------------------------------------------------------------------------

    async def compact_now(
        self,
        tenant: str,
        session_id: str,
        messages: list[dict[str, Any]],
        strategy_name: str | None,
        budget: int | None,
    ) -> CompactResult:
        strategy = self.strategy(strategy_name)
        target = budget if budget is not None else self.budget(tenant, session_id).target
        result, duration = await self._run(strategy, messages, target)
        record = await self._save(tenant, session_id, strategy.name, "manual", messages, result, duration)
        if record is None:
            raise RuntimeError("the compaction could not be recorded")
        return CompactResult(messages=result.messages, removed=result.removed, record=record)

    async def preview(self, tenant: str, session_id: str, strategy_name: str | None) -> Preview:
        memory = self.remembered.get((tenant, session_id))
        if memory is None or memory.messages is None:
            raise NotFound(
                "this session sent no request since the server started; nothing to preview",
                code="nothing_to_preview",
            )
        strategy = self.strategy(strategy_name)
        budget = self.budget(tenant, session_id)
        messages = self._masked(tenant, session_id, memory.messages)
        result, _ = await self._run(strategy, messages, budget.target)
        summary = next(
            (
                m["content"][len(strategies.SUMMARY_PREFIX) :]
                for m in result.messages
                if isinstance(m.get("content"), str) and m["content"].startswith(strategies.SUMMARY_PREFIX)
            ),
            None,
        )
        return Preview(
            strategy=strategy.name,
            budget=budget.target,
            tokens_before=result.tokens_before,
            tokens_after=result.tokens_after,
            would_compact=result.tokens_before > budget.threshold,
            kept=result.messages,
            removed=result.removed,
            summary=summary,
        )

    def _masked(self, tenant: str, session_id: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A copy of a remembered request as the sanitizer masks requests, when it runs: what
        compaction dropped from that request never passed masking, and a preview shows it."""
        copy: list[dict[str, Any]] = orjson.loads(orjson.dumps(messages))
        sanitizer = self.services.get("sanitizer")
        if sanitizer is not None:
            principal = Principal(tenant=tenant, scopes=frozenset())
            sanitizer.mask(ChatContext(principal=principal, body={"messages": copy}, session_id=session_id))
        return copy

    async def history(self, tenant: str, session_id: str, limit: int, cursor: str | None) -> Page[Record]:
        await self.settle()
        query = select(RecordRow).where(RecordRow.tenant == tenant, RecordRow.session_id == session_id)
        query = newest_first(query, RecordRow.at, RecordRow.id, limit=limit, cursor=cursor)
        async with self.db.read() as session:
            rows = (await session.scalars(query)).all()
        return page_of_rows(rows, limit, _record, lambda row: (row.at, row.id))

    async def series(self, tenant: str, session_id: str, limit: int = 500) -> list[ChartPoint]:
        await self.settle()
        query = (
            select(RecordRow)
            .where(RecordRow.tenant == tenant, RecordRow.session_id == session_id)
            .order_by(RecordRow.at.desc(), RecordRow.id.desc())
            .limit(limit)
        )
        async with self.db.read() as session:
            rows = list(reversed((await session.scalars(query)).all()))
        return [
            ChartPoint(
                at=r.at, tokens_before=r.tokens_before, tokens_after=r.tokens_after, strategy=r.strategy
            )
            for r in rows
        ]

    async def stats(self, tenant: str, session_id: str | None = None) -> Stats:
        await self.settle()
        query = select(
            RecordRow.strategy,
            RecordRow.trigger,
            func.count(),
            func.coalesce(func.sum(RecordRow.tokens_before - RecordRow.tokens_after), 0),
            func.coalesce(func.sum(RecordRow.duration_ms), 0.0),
        ).where(RecordRow.tenant == tenant)
        if session_id is not None:
            query = query.where(RecordRow.session_id == session_id)
        async with self.db.read() as session:
            rows = (await session.execute(query.group_by(RecordRow.strategy, RecordRow.trigger))).all()
            sessions = None
            if session_id is None:
                sessions = await session.scalar(
                    select(func.count(func.distinct(RecordRow.session_id))).where(RecordRow.tenant == tenant)
                )
        by_strategy: dict[str, int] = {}
        triggers = {"auto": 0, "manual": 0}
        saved = 0
        duration = 0.0
        for strategy, trigger, number, tokens_saved, milliseconds in rows:
            by_strategy[strategy] = by_strategy.get(strategy, 0) + int(number)
            triggers[trigger] = triggers.get(trigger, 0) + int(number)
            saved += int(tokens_saved)
            duration += float(milliseconds)
        total = sum(by_strategy.values())
        return Stats(
            session_id=session_id,
            compactions=total,
            auto=triggers["auto"],
            manual=triggers["manual"],
            tokens_saved=saved,
            mean_duration_ms=round(duration / total, 3) if total else 0.0,
            by_strategy=by_strategy,
            sessions=sessions,
        )

    async def _set(self, tenant: str, session_id: str, config: SessionConfig) -> None:
        values = {
            "tenant": tenant,
            "session_id": session_id,
            "auto": config.auto,
            "reserved_tokens": config.reserved_tokens,
            "updated_at": utcnow(),
        }
        insert = (pg_insert if self.db.dialect == "postgresql" else sqlite_insert)(SessionConfigRow.__table__)
        statement = insert.values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["tenant", "session_id"],
            set_={k: v for k, v in values.items() if k not in ("tenant", "session_id")},
        )
        async with self.db.write() as session:
            await session.execute(statement)
        self.configs[(tenant, session_id)] = config

    async def set_reserved(self, tenant: str, session_id: str, reserved: int) -> AutoStatus:
        current = self.config_of(tenant, session_id)
        await self._set(tenant, session_id, SessionConfig(current.auto, reserved))
        return await self.auto_status(tenant, session_id)

    async def toggle_auto(self, tenant: str, session_id: str, enabled: bool | None) -> AutoStatus:
        current = self.config_of(tenant, session_id)
        now = current.auto if current.auto is not None else self.settings.auto
        await self._set(
            tenant,
            session_id,
            SessionConfig(not now if enabled is None else enabled, current.reserved_tokens),
        )
        return await self.auto_status(tenant, session_id)

    async def auto_status(self, tenant: str, session_id: str) -> AutoStatus:
        config = self.config_of(tenant, session_id)
        budget = self.budget(tenant, session_id)
        last = await self.history(tenant, session_id, 1, None)
        return AutoStatus(
            session_id=session_id,
            enabled=config.auto if config.auto is not None else self.settings.auto,
            strategy=self.settings.strategy,
            context_window=budget.window,
            reserved_tokens=budget.reserved,
            threshold=budget.threshold,
            target_tokens=budget.target,
            last_compaction=last.items[0] if last.items else None,
        )

    async def simulate(self, tenant: str, session_id: str, given: Simulation) -> SimulationResult:
        """Replay the session's logged requests (their prompt sizes) under the given settings:
        how often compaction would trigger and what it would save."""
        current = self.budget(tenant, session_id)
        budget = budget_for(
            given.context_window or current.window,
            given.reserved_tokens if given.reserved_tokens is not None else current.reserved,
            given.threshold,
            given.target_ratio or self.settings.target_ratio,
        )
        sizes: list[int] = []
        sessions = self.services.get("sessions")
        if sessions is not None:
            async for row in sessions.iter_requests(tenant, session_id=session_id):
                if row.get("tokens_in"):
                    sizes.append(int(row["tokens_in"]))
        triggers = sent_with = peak = 0
        removed = 0  # tokens earlier compactions took out of the conversation
        for size in sizes:
            effective = max(size - removed, 0)
            if effective > budget.threshold:
                triggers += 1
                removed += effective - budget.target
                effective = budget.target
            sent_with += effective
            peak = max(peak, effective)
        without = sum(sizes)
        return SimulationResult(
            requests=len(sizes),
            triggers=triggers,
            threshold=budget.threshold,
            target_tokens=budget.target,
            tokens_sent_without=without,
            tokens_sent_with=sent_with,
            tokens_saved=without - sent_with,
            peak_tokens_with=peak,
        )

    def config_ui(self) -> ConfigUI:
        schema = CompactionSettings.model_json_schema()
        schema["properties"]["strategy"]["enum"] = sorted(self.strategies)
        return ConfigUI(
            json_schema=schema,
            values=self.settings.model_dump(),
            strategies=sorted(self.strategies),
            session_fields={
                "auto": {"type": "boolean", "route": "POST /api/compaction/{session_id}/toggle-auto"},
                "reserved_tokens": {
                    "type": "integer",
                    "minimum": 0,
                    "route": "POST /api/compaction/{session_id}/reserved",
                },
            },
        )


def chart_svg(points: list[ChartPoint], title: str) -> str:
    """A line chart of tokens before (grey) and after (blue) each compaction."""
    width, height, pad = 640, 280, 40
    if not points:
        body = f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no compactions yet</text>'
    else:
        top = max(p.tokens_before for p in points) or 1
        step = (width - 2 * pad) / max(len(points) - 1, 1)

        def line(values: list[int], colour: str) -> str:
            coords = " ".join(
                f"{pad + i * step:.1f},{height - pad - v / top * (height - 2 * pad):.1f}"
                for i, v in enumerate(values)
            )
            return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'

        body = (
            line([p.tokens_before for p in points], "#999999")
            + line([p.tokens_after for p in points], "#1f6feb")
            + f'<text x="{pad}" y="{pad - 8}" font-size="11">{top} tokens</text>'
            + f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#444"/>'
        )
    escaped = title.replace("&", "&amp;").replace("<", "&lt;")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">'
        f'<title>{escaped}</title><text x="{pad}" y="20" font-size="13">{escaped}</text>{body}</svg>'
    )


def summarizer(registry: Any, settings: CompactionSettings) -> strategies.Summarizer:
    """The summariser of the ``summarize`` and ``layered`` strategies: the configured model
    through the gateway, else (or when it fails) the offline extractive one."""
    if not settings.summary_model:
        return strategies.extractive_summary
    loop = asyncio.get_running_loop()

    def summarize(messages: list[dict[str, Any]], budget: int) -> str:
        gateway = registry.services.get("gateway")
        if gateway is None or threading_is_loop(loop):
            return strategies.extractive_summary(messages, budget)
        transcript = "\n".join(
            f"{m.get('role')}: {tokens.message_text(m.get('content'))[:4000]}" for m in messages
        )
        body = {
            "model": settings.summary_model,
            "max_tokens": budget,
            "messages": [
                {
                    "role": "system",
                    "content": "Summarise this conversation for its own continuation. Keep every "
                    "fact, name, number, decision and open task. Be brief.",
                },
                {"role": "user", "content": transcript},
            ],
        }
        ctx = ChatContext(principal=Principal.open(), body=body, registry=registry, upstream_ms=0.0)
        try:
            targets = gateway.targets(settings.summary_model)
            future = asyncio.run_coroutine_threadsafe(gateway.complete(ctx, targets), loop)
            answer = future.result(timeout=60)
            text = tokens.message_text(answer["choices"][0]["message"].get("content"))
        except Exception as exc:
            log.warning("the summary model failed (%s); summarising offline", describe_exception(exc))
            return strategies.extractive_summary(messages, budget)
        return text if tokens.count_text(text) <= budget else strategies.extractive_summary(messages, budget)

    return summarize


def threading_is_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the caller runs on ``loop``'s thread (where waiting on the loop would deadlock)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def start(registry: Any) -> CompactionService:
    settings: CompactionSettings = registry.plugin_settings(SERVICE)
    service = CompactionService(
        registry.db,
        registry.events,
        settings,
        registry.compaction_strategies,
        registry.services,
    )
    await service.start()
    registry.provide(SERVICE, service, plugin=SERVICE)
    return service
