from collections.abc import Generator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mnemogate.core.contracts import ChatContext
from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.sessions import hookspecs, routes, service
from mnemogate.plugins.sessions.models import Base
from mnemogate.plugins.sessions.settings import SessionsSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_hookspecs(register: Any) -> None:
    register(hookspecs)


@hookimpl
def register_settings(register: Any) -> None:
    register(SessionsSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS, metadata=Base.metadata)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.admin_router, tags=["sessions"], scope="admin")
    register(routes.write_router, tags=["sessions"], scope="write")
    register(routes.read_router, tags=["sessions"], scope="read")


@hookimpl
async def startup(app: FastAPI) -> None:
    await service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].stop()


@hookimpl
async def database_replaced(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].load_states()


@hookimpl(wrapper=True)
def chat_request(ctx: ChatContext) -> Generator[None, None, None]:
    # A wrapper runs before every plain implementation, so memory injection and the rest
    # already see the session.
    sessions = ctx.registry.services.get(service.SERVICE) if ctx.registry else None
    if sessions is not None:
        sessions.resolve(ctx)
    return (yield)


@hookimpl
def chat_response(ctx: ChatContext) -> None:
    sessions = ctx.registry.services.get(service.SERVICE) if ctx.registry else None
    if sessions is not None:
        sessions.record(ctx)
