from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.cline import routes, service
from mnemogate.plugins.cline.models import Base
from mnemogate.plugins.cline.settings import ClineSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(ClineSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.reads, tags=["cline"], scope="read")
    register(routes.admin, tags=["cline"], scope="admin")


@hookimpl
async def startup(app: FastAPI) -> None:
    await service.start(app.state.registry)
