from typing import Any

from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate_redis import service
from mnemogate_redis.settings import RedisSettings


@hookimpl
def register_settings(register: Any) -> None:
    register(RedisSettings)


@hookimpl
def register_event_bus(register: Any) -> None:
    register(service.event_bus)


# Hooks of other plugins: optional, so switching those plugins off leaves this one working.
@hookimpl(optionalhook=True)
def register_ratelimit_stores(register: Any, registry: Registry) -> None:
    if service.redis_url(registry.settings) is not None:
        register("redis", service.bucket_store, default=True)


@hookimpl(optionalhook=True)
def register_session_state_stores(register: Any, registry: Registry) -> None:
    if service.redis_url(registry.settings) is not None:
        register("redis", service.session_state_store(registry))
