from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.mcp_memory import routes, service
from mnemogate.plugins.mcp_memory.settings import McpMemorySettings


@hookimpl
def register_settings(register: Any) -> None:
    register(McpMemorySettings)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.reads, tags=["memory"], scope="read")
    register(routes.writes, tags=["memory"], scope="write")


@hookimpl
def startup(app: FastAPI) -> None:
    service.start(app.state.registry)
