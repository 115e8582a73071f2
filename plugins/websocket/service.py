"""What the channels carry: gateway request lifecycle on ``gateway`` (``/ws``), a summary feed on
``events``, server health on ``health`` every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from mnemogate.core.contracts import ChatContext
from mnemogate.core.events import EVERY_TENANT, Events
from mnemogate.core.registry import Registry
from mnemogate.plugins.websocket.settings import WebSocketSettings

SERVICE = "websocket"
GATEWAY, EVENTS, HEALTH, LEARNING = "gateway", "events", "health", "learning"


class LiveEvents:
    def __init__(self, registry: Registry, settings: WebSocketSettings) -> None:
        self.registry = registry
        self.events: Events = registry.events
        self.settings = settings
        self._health: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- gateway -------------------------------------------------------------------------------

    async def request_started(self, ctx: ChatContext) -> None:
        data = {
            "request_id": ctx.request_id,
            "session_id": ctx.session_id,
            "model": ctx.body.get("model"),
            "stream": ctx.stream,
            "messages": len(ctx.body.get("messages") or ()),
        }
        await self.events.publish(GATEWAY, "request.started", ctx.tenant, data)
        if ctx.stream:
            ctx.chunk_filters.append(self._progress_counter(ctx))

    def _progress_counter(self, ctx: ChatContext) -> Callable[[bytes], bytes]:
        """A chunk filter that only counts, and reports progress at most every interval."""
        interval = self.settings.progress_interval_seconds
        counts = {"blocks": 0, "bytes": 0}
        last = time.monotonic()

        def count(block: bytes) -> bytes:
            nonlocal last
            counts["blocks"] += 1
            counts["bytes"] += len(block)
            now = time.monotonic()
            if now - last >= interval:
                last = now
                data = {"request_id": ctx.request_id, "provider": ctx.provider, "model": ctx.model, **counts}
                self._spawn(self.events.publish(GATEWAY, "stream.progress", ctx.tenant, data))
            return block

        return count

    async def request_finished(self, ctx: ChatContext) -> None:
        failed = ctx.error is not None or (ctx.status or 500) >= 400
        data = {
            "request_id": ctx.request_id,
            "session_id": ctx.session_id,
            "provider": ctx.provider,
            "model": ctx.model,
            "status": ctx.status,
            "stream": ctx.stream,
            "usage": ctx.usage,
            "latency_ms": _round(ctx.latency_ms),
            "ttft_ms": _round(ctx.ttft_ms),
            "overhead_ms": _round(ctx.overhead_ms),
            "error": ctx.error,
        }
        kind = "request.failed" if failed else "request.finished"
        await self.events.publish(GATEWAY, kind, ctx.tenant, data)
        await self.events.publish(EVENTS, f"gateway.{kind}", ctx.tenant, data)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- health --------------------------------------------------------------------------------

    def start(self) -> None:
        self._health = asyncio.get_running_loop().create_task(self._report_health())

    async def stop(self) -> None:
        if self._health is not None:
            self._health.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def health(self) -> dict[str, Any]:
        registry = self.registry
        database = await registry.db.ping(1.0) if registry.db_open else False
        hub = registry.hub
        return {
            "status": "ok" if database else "degraded",
            "database": database,
            "uptime_seconds": round(time.time() - registry.started_at, 1),
            "websocket_clients": len(hub.sockets) if hub is not None else 0,
            "plugins": len(registry.host.enabled_names()),
        }

    async def _report_health(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_seconds)
            await self.events.publish(HEALTH, "health", EVERY_TENANT, await self.health())


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def start(registry: Registry) -> None:
    live = LiveEvents(registry, registry.plugin_settings(SERVICE))
    live.start()
    registry.provide(SERVICE, live, plugin="websocket")
