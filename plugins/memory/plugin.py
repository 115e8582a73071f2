from pathlib import Path
from typing import Any

import click
from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.memory import commands
from mnemogate.plugins.memory.engine import CHANNEL, SERVICE, MemoryEngine
from mnemogate.plugins.memory.models import Base
from mnemogate.plugins.memory.settings import MemorySettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(MemorySettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_ws_channels(register: Any) -> None:
    register(
        CHANNEL, path="/ws/memory", description="memory writes and recalls (created/updated/deleted/recalled)"
    )


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(commands.memory)


@hookimpl
async def startup(app: FastAPI) -> None:
    registry = app.state.registry
    engine = MemoryEngine.from_registry(registry)
    await engine.start()
    registry.provide(SERVICE, engine, plugin="memory")


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[SERVICE].close()


@hookimpl
async def database_replaced(app: FastAPI) -> None:
    await app.state.registry.services[SERVICE].reset()
