from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.semantic import routes
from mnemogate.plugins.semantic.models import Base
from mnemogate.plugins.semantic.service import KIND, EntityService

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.reads, tags=["semantic"], scope="read")
    register(routes.writes, tags=["semantic"], scope="write")


@hookimpl
def register_memory_types(register: Any) -> None:
    register(KIND, EntityService())


@hookimpl
def startup(app: FastAPI) -> None:
    app.state.registry.memory_types[KIND].start(app.state.registry)
