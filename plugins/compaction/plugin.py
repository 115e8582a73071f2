from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.contracts import ChatContext
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.plugins.compaction import routes, service, strategies
from mnemogate.plugins.compaction.models import Base
from mnemogate.plugins.compaction.settings import CompactionSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(CompactionSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.write_router, tags=["compaction"], scope="write")
    register(routes.read_router, tags=["compaction"], scope="read")


@hookimpl
async def register_compaction_strategies(register: Any, registry: Registry) -> None:
    summarize = service.summarizer(registry, registry.plugin_settings(service.SERVICE))
    for name, strategy in strategies.builtin(summarize).items():
        register(name, strategy)


@hookimpl
async def startup(app: FastAPI) -> None:
    await service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].stop()


@hookimpl
async def chat_request(ctx: ChatContext) -> None:
    # A plain implementation: after memory injection, before compression and masking.
    compaction = ctx.registry.services.get(service.SERVICE) if ctx.registry else None
    if compaction is not None:
        await compaction.auto(ctx)
