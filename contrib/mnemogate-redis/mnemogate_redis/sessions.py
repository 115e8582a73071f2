"""Gateway session state shared through Redis: one hash holds every tenant's state (read at
start-up), and each save is announced on a channel so the other instances adopt it at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from mnemogate_redis.listener import Listener

if TYPE_CHECKING:
    import redis.asyncio as aioredis


class RedisSessionStateStore:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.key = f"{prefix}sessions:state"
        self.origin = uuid.uuid4().hex
        self.listener: Listener | None = None

    async def load(self) -> dict[str, dict[str, Any]]:
        stored = await self.client.hgetall(self.key)
        return {tenant.decode(): orjson.loads(value) for tenant, value in stored.items()}

    async def save(self, tenant: str, state: dict[str, Any]) -> None:
        value = orjson.dumps(state)
        message = orjson.dumps({"origin": self.origin, "tenant": tenant, "state": state})
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, tenant, value)
            pipe.publish(self.key, message)
            await pipe.execute()

    async def watch(self, on_change: Callable[[str, dict[str, Any]], None]) -> None:
        def received(data: bytes) -> None:
            message = orjson.loads(data)
            if message["origin"] != self.origin:
                on_change(message["tenant"], message["state"])

        self.listener = Listener(self.client, self.key, received)
        await self.listener.start()

    async def close(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
        await self.client.aclose()
