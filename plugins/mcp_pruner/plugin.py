from typing import Any

from mnemogate.core.contracts import McpServerModule
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_pruner.settings import PrunerSettings


@hookimpl
def register_settings(register: Any) -> None:
    register(PrunerSettings)


@hookimpl
def register_mcp_servers(register: Any, registry: Registry) -> None:
    register("pruner", McpServerModule("mnemogate.plugins.mcp_pruner.server"))
