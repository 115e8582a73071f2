from typing import Any

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.exports import routes


@hookimpl
def register_routes(register: Any) -> None:
    register(routes.router, tags=["exports"], scope="read")
