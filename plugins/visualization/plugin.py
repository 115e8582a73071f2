from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.visualization import routes, service
from mnemogate.plugins.visualization.settings import VisualizationSettings


@hookimpl
def register_settings(register: Any) -> None:
    register(VisualizationSettings)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.reads, tags=["visualization"], scope="read")
    register(routes.writes, tags=["visualization"], scope="write")
    register(routes.pages, tags=["visualization"], scope=None)


@hookimpl
def register_ws_channels(register: Any) -> None:
    register(
        service.CHANNEL,
        path="/ws/viz",
        description="memory graph changes: nodes and edges added, removed, strengthened",
    )


@hookimpl
async def startup(app: FastAPI) -> None:
    await service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await app.state.registry.services[service.SERVICE].stop()


@hookimpl
def database_replaced(app: FastAPI) -> None:
    app.state.registry.services[service.SERVICE].forget()
