"""The ``compress`` service: the engine for other plugins (the ``context-compression`` MCP
server calls ``compress_text`` and ``compress_messages``), the optional pipeline step, and the
figures of what was saved per session.

Figures from the pipeline are queued and written in batches off the request path; the route's
are written at once. Reads flush first.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mnemogate.core import tokens
from mnemogate.core.contracts import ChatContext, utcnow
from mnemogate.core.db import Database
from mnemogate.core.flusher import Flusher
from mnemogate.plugins.compress import engine
from mnemogate.plugins.compress.models import CompressResult, CompressStats, SourceStats, StatsRow
from mnemogate.plugins.compress.settings import CompressSettings

log = logging.getLogger("mnemogate.compress")

SERVICE = "compress"
DATA_KEY = "compress"
NO_SESSION = ""


@dataclass(slots=True)
class Saving:
    runs: int = 0
    tokens_before: int = 0
    tokens_after: int = 0


def _ratio(before: int, after: int) -> float:
    return round(after / before, 4) if before else 1.0


class CompressService:
    def __init__(self, db: Database, settings: CompressSettings) -> None:
        self.db = db
        self.settings = settings
        self.options = engine.Options(
            json=settings.compact_json,
            repeated_block_chars=settings.repeated_block_chars,
            fold_lines=settings.fold_lines,
            fold_head_lines=settings.fold_head_lines,
            fold_tail_lines=settings.fold_tail_lines,
        )
        self._pending: dict[tuple[str, str, str], Saving] = {}
        self._lock = asyncio.Lock()
        self.flusher = Flusher(self.flush, settings.flush_interval_seconds, "compression figures")

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self.flusher.start()

    async def stop(self) -> None:
        await self.flusher.stop()

    # -- the engine, for other plugins ---------------------------------------------------------

    def compress_text(self, text: str) -> str:
        return engine.compress_text(text, self.options)

    def compress_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return engine.compress_messages(messages, self.options)

    # -- the pipeline step (no awaits) ---------------------------------------------------------

    def compress_request(self, ctx: ChatContext) -> None:
        messages = ctx.body.get("messages")
        if not self.settings.pipeline or not isinstance(messages, list):
            return
        before = tokens.count_messages([m for m in messages if isinstance(m, dict)])
        report = engine.Report()
        compressed = engine.compress_messages(messages, self.options, report)
        after = tokens.count_messages([m for m in compressed if isinstance(m, dict)])
        if after < before:
            ctx.body["messages"] = compressed
            ctx.data[DATA_KEY] = {"tokens_before": before, "tokens_after": after, **report.as_dict()}
        else:
            after = before
        self._add(ctx.tenant, ctx.session_id or NO_SESSION, "pipeline", before, after)

    def _add(self, tenant: str, session_id: str, source: str, before: int, after: int) -> None:
        saving = self._pending.get((tenant, session_id, source))
        if saving is None:
            saving = self._pending[(tenant, session_id, source)] = Saving()
        saving.runs += 1
        saving.tokens_before += before
        saving.tokens_after += after

    # -- writing -------------------------------------------------------------------------------

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.db.dialect == "postgresql" else sqlite_insert)(table)

    async def flush(self) -> None:
        async with self._lock:
            pending, self._pending = self._pending, {}
            if not pending:
                return
            now = utcnow()
            values = [
                {
                    "tenant": tenant,
                    "session_id": session_id,
                    "source": source,
                    "runs": s.runs,
                    "tokens_before": s.tokens_before,
                    "tokens_after": s.tokens_after,
                    "last_at": now,
                }
                for (tenant, session_id, source), s in pending.items()
            ]
            table = StatsRow.__table__
            statement = self._insert(table).values(values)
            statement = statement.on_conflict_do_update(
                index_elements=["tenant", "session_id", "source"],
                set_={
                    "runs": table.c.runs + statement.excluded.runs,
                    "tokens_before": table.c.tokens_before + statement.excluded.tokens_before,
                    "tokens_after": table.c.tokens_after + statement.excluded.tokens_after,
                    "last_at": statement.excluded.last_at,
                },
            )
            try:
                async with self.db.write() as session:
                    await session.execute(statement)
            except BaseException:
                for key, saving in pending.items():
                    newer = self._pending.get(key)
                    if newer is not None:
                        saving.runs += newer.runs
                        saving.tokens_before += newer.tokens_before
                        saving.tokens_after += newer.tokens_after
                    self._pending[key] = saving
                raise

    # -- the API -------------------------------------------------------------------------------

    async def compress_for_session(
        self, tenant: str, session_id: str, messages: list[dict[str, Any]] | None, text: str | None
    ) -> CompressResult:
        report = engine.Report()
        if messages is not None:
            out_messages = engine.compress_messages(messages, self.options, report)
            before, after = tokens.count_messages(messages), tokens.count_messages(out_messages)
            result = CompressResult(
                messages=out_messages,
                tokens_before=before,
                tokens_after=after,
                saved_tokens=before - after,
                ratio=_ratio(before, after),
                changes=report.as_dict(),
            )
        else:
            out_text = engine.compress_text(text or "", self.options, report)
            before, after = tokens.count_text(text or ""), tokens.count_text(out_text)
            result = CompressResult(
                text=out_text,
                tokens_before=before,
                tokens_after=after,
                saved_tokens=before - after,
                ratio=_ratio(before, after),
                changes=report.as_dict(),
            )
        self._add(tenant, session_id, "route", before, after)
        await self.flush()
        return result

    async def stats(self, tenant: str, session_id: str | None = None) -> CompressStats:
        await self.flush()
        query = select(
            StatsRow.source,
            func.sum(StatsRow.runs),
            func.sum(StatsRow.tokens_before),
            func.sum(StatsRow.tokens_after),
            func.count(func.distinct(StatsRow.session_id)),
        ).where(StatsRow.tenant == tenant)
        if session_id is not None:
            query = query.where(StatsRow.session_id == session_id)
        async with self.db.read() as session:
            rows = (await session.execute(query.group_by(StatsRow.source))).all()
            sessions = None
            if session_id is None:
                sessions = await session.scalar(
                    select(func.count(func.distinct(StatsRow.session_id))).where(
                        StatsRow.tenant == tenant, StatsRow.session_id != NO_SESSION
                    )
                )
        by_source = {
            source: SourceStats(
                runs=int(runs),
                tokens_before=int(before),
                tokens_after=int(after),
                saved_tokens=int(before - after),
            )
            for source, runs, before, after, _ in rows
        }
        runs = sum(s.runs for s in by_source.values())
        before = sum(s.tokens_before for s in by_source.values())
        after = sum(s.tokens_after for s in by_source.values())
        return CompressStats(
            session_id=session_id,
            pipeline_enabled=self.settings.pipeline,
            runs=runs,
            tokens_before=before,
            tokens_after=after,
            saved_tokens=before - after,
            ratio=_ratio(before, after),
            by_source=by_source,
            sessions=sessions,
        )


async def start(registry: Any) -> CompressService:
    service = CompressService(registry.db, registry.plugin_settings(SERVICE))
    await service.start()
    registry.provide(SERVICE, service, plugin=SERVICE)
    return service
