from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.observability import routes, service
from mnemogate.plugins.observability.middleware import MetricsMiddleware, TracingMiddleware
from mnemogate.plugins.observability.settings import ObservabilitySettings


@hookimpl
def register_settings(register: Any) -> None:
    register(ObservabilitySettings)


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.router, tags=["observability"], scope="read")


@hookimpl
def register_middleware(register: Any) -> None:
    register(TracingMiddleware, order=15, name="tracing")
    register(MetricsMiddleware, order=20, name="metrics")


@hookimpl
def startup(app: FastAPI) -> None:
    service.start(app.state.registry)


@hookimpl
async def shutdown(app: FastAPI) -> None:
    await service.stop(app.state.registry)
