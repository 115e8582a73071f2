from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.episodic import routes
from mnemogate.plugins.episodic.models import Base
from mnemogate.plugins.episodic.service import KIND, EpisodeService
from mnemogate.plugins.episodic.settings import EpisodicSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(EpisodicSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.reads, tags=["episodic"], scope="read")
    register(routes.writes, tags=["episodic"], scope="write")


@hookimpl
def register_memory_types(register: Any) -> None:
    register(KIND, EpisodeService())


@hookimpl
def startup(app: FastAPI) -> None:
    app.state.registry.memory_types[KIND].start(app.state.registry)
