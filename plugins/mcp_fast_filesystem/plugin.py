from typing import Any

from fastapi import FastAPI

from mnemogate.core.contracts import McpServerModule
from mnemogate.core.errors import StartupError
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_fast_filesystem.service import SERVICE, FileToolError, Sandbox
from mnemogate.plugins.mcp_fast_filesystem.settings import FastFilesystemSettings

PLUGIN = "mcp_fast_filesystem"


@hookimpl
def register_settings(register: Any) -> None:
    register(FastFilesystemSettings)


@hookimpl
def register_mcp_servers(register: Any, registry: Registry) -> None:
    register("fast-filesystem", McpServerModule("mnemogate.plugins.mcp_fast_filesystem.server"))


@hookimpl
def startup(app: FastAPI) -> None:
    registry = app.state.registry
    try:
        sandbox = Sandbox.from_settings(registry.plugin_settings(PLUGIN), registry.settings.data_dir)
    except FileToolError as exc:
        raise StartupError(f"plugin {PLUGIN!r}: {exc}") from None
    registry.provide(SERVICE, sandbox, plugin=PLUGIN)
