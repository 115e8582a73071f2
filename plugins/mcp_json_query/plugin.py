from typing import Any

from mnemogate.core.contracts import McpServerModule
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_json_query.settings import JsonQuerySettings


@hookimpl
def register_settings(register: Any) -> None:
    register(JsonQuerySettings)


@hookimpl
def register_mcp_servers(register: Any, registry: Registry) -> None:
    register("json-query", McpServerModule("mnemogate.plugins.mcp_json_query.server"))
