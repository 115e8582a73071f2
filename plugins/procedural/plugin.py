from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.procedural import routes
from mnemogate.plugins.procedural.models import Base
from mnemogate.plugins.procedural.service import KIND, SkillService
from mnemogate.plugins.procedural.settings import ProceduralSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(ProceduralSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.reads, tags=["procedural"], scope="read")
    register(routes.writes, tags=["procedural"], scope="write")


@hookimpl
def register_memory_types(register: Any) -> None:
    register(KIND, SkillService())


@hookimpl
def startup(app: FastAPI) -> None:
    app.state.registry.memory_types[KIND].start(app.state.registry)
