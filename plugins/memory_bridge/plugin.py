from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.contracts import ChatContext, McpToolCall
from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.memory_bridge import routes, service
from mnemogate.plugins.memory_bridge.models import Base
from mnemogate.plugins.memory_bridge.settings import MemoryBridgeSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(MemoryBridgeSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.reads, tags=["memory"], scope="read")
    register(routes.writes, tags=["memory"], scope="write")


@hookimpl
async def startup(app: FastAPI) -> None:
    await service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].drain()


@hookimpl(tryfirst=True)
def chat_request(ctx: ChatContext) -> Awaitable[None] | None:
    # Plain, handing back an awaitable only when there is work: the pipeline awaits it.
    bridge = ctx.registry.services.get(service.SERVICE) if ctx.registry else None
    return bridge.before(ctx) if bridge is not None else None


@hookimpl
def chat_response(ctx: ChatContext) -> None:
    bridge = ctx.registry.services.get(service.SERVICE) if ctx.registry else None
    if bridge is not None:
        bridge.after(ctx)


@hookimpl(optionalhook=True)  # defined by mcp_gateway, which may be switched off
def mcp_tool_called(call: McpToolCall) -> None:
    bridge = call.registry.services.get(service.SERVICE) if call.registry else None
    if bridge is not None:
        bridge.tool_called(call)


@hookimpl
async def database_replaced(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].load_session_modes()
