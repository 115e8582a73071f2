from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.ratelimit import hookspecs, routes, service
from mnemogate.plugins.ratelimit.middleware import RateLimitMiddleware
from mnemogate.plugins.ratelimit.settings import RateLimitSettings


@hookimpl
def register_hookspecs(register: Any) -> None:
    register(hookspecs)


@hookimpl
def register_settings(register: Any) -> None:
    register(RateLimitSettings)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.router, tags=["ratelimit"], scope="read")


@hookimpl
def register_middleware(register: Any) -> None:
    register(RateLimitMiddleware, order=60, name="rate-limit")


@hookimpl
def register_ratelimit_stores(register: Any) -> None:
    register("memory", lambda _settings: service.MemoryBucketStore())


@hookimpl
async def startup(app: FastAPI) -> None:
    await service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await service.stop(app.state.registry)
