from typing import Any

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.hardening.middleware import (
    BodyLimitMiddleware,
    CorsMiddleware,
    RequestContextMiddleware,
)
from mnemogate.plugins.hardening.settings import HardeningSettings


@hookimpl
def register_settings(register: Any) -> None:
    register(HardeningSettings)


@hookimpl
def register_middleware(register: Any) -> None:
    register(RequestContextMiddleware, order=10, name="request-context")
    register(CorsMiddleware, order=25, name="cors")
    register(BodyLimitMiddleware, order=30, name="body-limit")
