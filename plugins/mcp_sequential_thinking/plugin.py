from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.contracts import McpServerModule
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_sequential_thinking import service
from mnemogate.plugins.mcp_sequential_thinking.models import Base

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_mcp_servers(register: Any, registry: Registry) -> None:
    register("sequential-thinking", McpServerModule("mnemogate.plugins.mcp_sequential_thinking.server"))


@hookimpl
def startup(app: FastAPI) -> None:
    registry = app.state.registry
    registry.provide(service.SERVICE, service.ThoughtStore(registry.db), plugin="mcp_sequential_thinking")
