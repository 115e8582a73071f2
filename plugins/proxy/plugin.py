from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.proxy import routes, service
from mnemogate.plugins.proxy.middleware import GatewayClockMiddleware
from mnemogate.plugins.proxy.settings import ProxySettings


@hookimpl
def register_settings(register: Any) -> None:
    register(ProxySettings)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.chat_router, tags=["gateway"], scope="write")
    register(routes.models_router, tags=["gateway"], scope="read")


@hookimpl
def register_middleware(register: Any) -> None:
    register(GatewayClockMiddleware, order=5, name="gateway-clock")


@hookimpl
async def startup(app: FastAPI) -> None:
    await service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].drain()
