from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.mem0_compat import routes
from mnemogate.plugins.mem0_compat.errors import Mem0ErrorShape
from mnemogate.plugins.mem0_compat.models import Base
from mnemogate.plugins.mem0_compat.service import KIND, Mem0Service
from mnemogate.plugins.mem0_compat.settings import Mem0Settings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(Mem0Settings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.oss_reads, tags=["mem0"], scope="read")
    register(routes.oss_writes, tags=["mem0"], scope="write")
    register(routes.oss_admin, tags=["mem0"], scope="admin")
    register(routes.platform_reads, tags=["mem0 platform"], scope="read")
    register(routes.platform_writes, tags=["mem0 platform"], scope="write")


@hookimpl
def register_middleware(register: Any) -> None:
    register(Mem0ErrorShape, order=28, name="mem0-error-shape")


@hookimpl
def register_memory_types(register: Any) -> None:
    register(KIND, Mem0Service())


@hookimpl
def startup(app: FastAPI) -> None:
    app.state.registry.memory_types[KIND].start(app.state.registry)
