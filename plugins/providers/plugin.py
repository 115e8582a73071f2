from typing import Any

from fastapi import FastAPI

from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.plugins.providers import service
from mnemogate.plugins.providers.settings import ProvidersSettings


@hookimpl
def register_settings(register: Any) -> None:
    register(ProvidersSettings)


@hookimpl
def register_providers(register: Any, registry: Registry) -> None:
    service.register_all(registry, register)


@hookimpl
def shutdown(app: FastAPI) -> None:
    service.close_all(app.state.registry)
