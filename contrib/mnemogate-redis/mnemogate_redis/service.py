"""Builds the Redis-backed parts from the settings; each owns its client (connection pool).

The ``redis`` package (a fifth of a second to import) is imported only when a Redis URL is
configured: without one, nothing here needs it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mnemogate.core.errors import StartupError
from mnemogate.core.events import EventBus, InProcessEventBus
from mnemogate_redis.settings import RedisSettings

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from mnemogate.core.registry import Registry
    from mnemogate.core.settings import Settings
    from mnemogate_redis.ratelimit import RedisBucketStore
    from mnemogate_redis.sessions import RedisSessionStateStore

log = logging.getLogger("mnemogate.redis")


def redis_url(settings: Settings) -> str | None:
    return None if settings.redis_url is None else settings.redis_url.get_secret_value()


def plugin_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.model_validate(settings.plugins.raw("redis"))


def connect(settings: Settings) -> aioredis.Redis:
    """A client with its own connection pool; connections open on first use."""
    import redis.asyncio as aioredis

    url = redis_url(settings)
    assert url is not None
    try:
        return aioredis.from_url(
            url,
            socket_connect_timeout=plugin_settings(settings).connect_timeout_seconds,
            health_check_interval=30,
        )
    except ValueError:
        raise StartupError("MNEMOGATE_REDIS_URL cannot be parsed (expected redis://host:port/db)") from None


def event_bus(settings: Settings) -> EventBus:
    """Events across instances through Redis; without a Redis URL, the in-process bus."""
    if redis_url(settings) is None:
        log.info("MNEMOGATE_REDIS_URL is not set: events stay within this instance")
        return InProcessEventBus()
    from mnemogate_redis.events import RedisEventBus

    return RedisEventBus(connect(settings), plugin_settings(settings).prefix)


def bucket_store(settings: Settings) -> RedisBucketStore:
    from mnemogate_redis.ratelimit import RedisBucketStore

    return RedisBucketStore(connect(settings), plugin_settings(settings).prefix)


def session_state_store(registry: Registry) -> RedisSessionStateStore:
    from mnemogate_redis.sessions import RedisSessionStateStore

    return RedisSessionStateStore(connect(registry.settings), plugin_settings(registry.settings).prefix)
