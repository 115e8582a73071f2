"""The event bus across instances: each event is delivered to this process's subscribers at
once and published on one Redis channel; every other instance delivers what it receives to its
own subscribers (WebSocket clients), skipping the events it published itself."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

from mnemogate.core.events import Event, LocalFanout, Subscription
from mnemogate_redis.listener import Listener

if TYPE_CHECKING:
    import redis.asyncio as aioredis


class RedisEventBus:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.channel = f"{prefix}events"
        self.origin = uuid.uuid4().hex.encode()
        self.local = LocalFanout()
        self.listener = Listener(client, self.channel, self._received)

    async def start(self) -> None:
        await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()
        await self.client.aclose()

    async def publish(self, event: Event) -> None:
        self.local.deliver(event)
        await self.client.publish(self.channel, self.origin + b" " + event.to_wire())

    def _received(self, data: bytes) -> None:
        origin, _, wire = data.partition(b" ")
        if origin != self.origin:
            self.local.deliver(Event.from_wire(wire))

    def subscribe(
        self, channel: str, tenant: str | None
    ) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self.local.subscribe(channel, tenant)
