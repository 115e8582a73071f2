from pathlib import Path
from typing import Any

import click
from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.auth import commands, routes
from mnemogate.plugins.auth.middleware import SERVICE, AuthMiddleware
from mnemogate.plugins.auth.models import Base
from mnemogate.plugins.auth.service import KeyService
from mnemogate.plugins.auth.settings import AuthSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(AuthSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.router, tags=["auth"], scope="admin")


@hookimpl
def register_middleware(register: Any) -> None:
    register(AuthMiddleware, order=50, name="authenticate")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(commands.keys)


@hookimpl
def startup(app: FastAPI) -> None:
    registry = app.state.registry
    settings: AuthSettings = registry.plugin_settings("auth")
    registry.provide(SERVICE, KeyService(registry.db, settings.cache_seconds), plugin="auth")


@hookimpl
async def requires_api_keys(app: FastAPI) -> bool:
    return await app.state.registry.services[SERVICE].has_active_keys()


@hookimpl
def database_replaced(app: FastAPI) -> None:
    app.state.registry.services[SERVICE].forget()
