from typing import Any

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.system import routes


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.probes, tags=["system"], scope=None)
    register(routes.inventory, prefix="/api/v1", tags=["system"], scope="read")
