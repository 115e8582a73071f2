from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.persistence import routes, service
from mnemogate.plugins.persistence.models import Base
from mnemogate.plugins.persistence.settings import PersistenceSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(PersistenceSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.reads, tags=["persistence"], scope="read")
    register(routes.writes, tags=["persistence"], scope="write")
    register(routes.admin, tags=["persistence"], scope="admin")


@hookimpl
async def startup(app: FastAPI) -> None:
    await service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].stop()
