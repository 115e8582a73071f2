from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.consolidation import routes, service
from mnemogate.plugins.consolidation.models import Base
from mnemogate.plugins.consolidation.settings import ConsolidationSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(ConsolidationSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.reads, tags=["consolidation"], scope="read")
    register(routes.writes, tags=["consolidation"], scope="write")


@hookimpl
def startup(app: FastAPI) -> None:
    service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].stop()
