from typing import Any

from mnemogate.core.contracts import McpServerModule
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_memory_server import NAME, routes


@hookimpl
def register_mcp_servers(register: Any, registry: Registry) -> None:
    register(NAME, McpServerModule("mnemogate.plugins.mcp_memory_server.server"))


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.router, tags=["mcp"], scope=routes.SCOPE)
