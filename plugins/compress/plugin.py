from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.contracts import ChatContext
from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.compress import routes, service
from mnemogate.plugins.compress.models import Base
from mnemogate.plugins.compress.settings import CompressSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(CompressSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.write_router, tags=["compress"], scope="write")
    register(routes.read_router, tags=["compress"], scope="read")


@hookimpl
async def startup(app: FastAPI) -> None:
    await service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].stop()


@hookimpl
def chat_request(ctx: ChatContext) -> None:
    # A plain implementation: after memory injection and compaction, before masking.
    compress = ctx.registry.services.get(service.SERVICE) if ctx.registry else None
    if compress is not None:
        compress.compress_request(ctx)
