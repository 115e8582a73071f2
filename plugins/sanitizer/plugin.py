from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.contracts import ChatContext
from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.sanitizer import detectors, routes, service
from mnemogate.plugins.sanitizer.models import Base
from mnemogate.plugins.sanitizer.settings import SanitizerSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(SanitizerSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.read_router, tags=["sanitizer"], scope="read")
    register(routes.admin_router, tags=["sanitizer"], scope="admin")


@hookimpl
def register_sanitizers(register: Any) -> None:
    for detector in detectors.BUILTIN:
        register(detector.kind, detector)


@hookimpl
async def startup(app: FastAPI) -> None:
    await service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].stop()


@hookimpl(trylast=True)
def chat_request(ctx: ChatContext) -> None:
    # Last, so whatever memory injection, compaction and compression added is masked too.
    sanitizer = ctx.registry.services.get(service.SERVICE) if ctx.registry else None
    if sanitizer is not None:
        sanitizer.mask(ctx)
