from typing import Any

from mnemogate.core.contracts import McpServerModule
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_context_compression.settings import ContextCompressionSettings


@hookimpl
def register_settings(register: Any) -> None:
    register(ContextCompressionSettings)


@hookimpl
def register_mcp_servers(register: Any, registry: Registry) -> None:
    register("context-compression", McpServerModule("mnemogate.plugins.mcp_context_compression.server"))
