"""A Redis pub/sub subscription read by a background task that reconnects after failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis.exceptions

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("mnemogate.redis")

RECONNECT_SECONDS = 1.0


class Listener:
    """Calls ``handle(data)`` for every message on ``channel`` until stopped."""

    def __init__(self, client: aioredis.Redis, channel: str, handle: Callable[[bytes], None]) -> None:
        self.client = client
        self.channel = channel
        self.handle = handle
        self.task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        """Start listening; returns once subscribed, so nothing published afterwards is missed."""
        self.task = asyncio.get_running_loop().create_task(self._run())
        waiter = asyncio.ensure_future(self.subscribed.wait())
        await asyncio.wait({waiter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            waiter.cancel()
            await self.task  # it failed before subscribing: raise its error

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def _run(self) -> None:
        first = True
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") == "subscribe":
                        # Redis confirmed: every message published from now on reaches us.
                        self.subscribed.set()
                        first = False
                    if message.get("type") != "message":
                        continue
                    try:
                        self.handle(message["data"])
                    except Exception as exc:
                        log.warning(
                            "a message on %s could not be handled: %s", self.channel, type(exc).__name__
                        )
            except (OSError, redis.exceptions.RedisError) as exc:
                if first:
                    raise
                log.warning("Redis subscription %s lost (%s); reconnecting", self.channel, type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RECONNECT_SECONDS)
