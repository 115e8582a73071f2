from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_gateway import hookspecs, routes, service
from mnemogate.plugins.mcp_gateway.models import Base
from mnemogate.plugins.mcp_gateway.settings import McpGatewaySettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_hookspecs(register: Any) -> None:
    register(hookspecs)


@hookimpl
def register_settings(register: Any) -> None:
    register(McpGatewaySettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.rpc_router, prefix="/api/mcp-gateway", tags=["mcp"], scope="write")
    register(routes.read_router, prefix="/api/mcp-gateway", tags=["mcp"], scope="read")
    register(routes.direct_router, tags=["mcp"], scope="write")


@hookimpl
def register_mcp_servers(register: Any, registry: Registry) -> None:
    for name, server in service.configured_servers(registry).items():
        register(name, server)


@hookimpl
async def startup(app: FastAPI) -> None:
    await service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].stop()
