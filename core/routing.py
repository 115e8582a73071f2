"""Direct dispatch of the hot routes: a fixed path whose endpoint takes only the request.

FastAPI finds a route by trying every route in turn (each included router's routes, through
their route contexts) and then runs its dependency solver, even for an endpoint that takes
nothing but the ``Request``. For the gateway's chat endpoint that was most of the CPU the
gateway spent on a request. A route qualifies for direct dispatch when its path has no
parameters, its endpoint is ``async def f(request: Request) -> Response`` (some ``Response``)
and neither it nor its router declares dependencies other than the route pack's API-key scope;
such a route is found with one dict probe and called with that scope checked here. Any other
request goes to the router as before, and so does a path an earlier route would take first.
Exceptions propagate to the app's exception handlers exactly as from the router.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from mnemogate.core.contracts import Principal
from mnemogate.core.dependencies import check_scope

Endpoint = Callable[[Request], Awaitable[Response]]
_OPEN = Principal.open()


@dataclass(frozen=True, slots=True)
class DirectRoute:
    route: Any  # as the router would put it in the scope (route templates are keyed by it)
    endpoint: Endpoint
    scope: str | None  # the API-key scope the route pack requires


@dataclass(frozen=True, slots=True)
class Candidate:
    """A mounted route as the dispatcher sees it: its full path, the route, and (for a route
    that may be dispatched directly) the scope its pack requires."""

    path: str
    route: Any
    direct: bool = False
    scope: str | None = None


def takes_only_the_request(route: Any, router_dependencies: Iterable[Any] = ()) -> bool:
    """Whether FastAPI would do nothing for this route but call ``endpoint(request)``."""
    if not isinstance(route, APIRoute) or route.dependencies or list(router_dependencies):
        return False
    endpoint = route.endpoint
    if not inspect.iscoroutinefunction(endpoint):
        return False
    try:
        hints = typing.get_type_hints(endpoint)
    except Exception:
        return False
    parameters = list(inspect.signature(endpoint).parameters)
    returns = hints.get("return")
    return (
        len(parameters) == 1
        and hints.get(parameters[0]) is Request
        and isinstance(returns, type)
        and issubclass(returns, Response)
    )


def direct_table(candidates: list[Candidate]) -> dict[tuple[str, str], DirectRoute]:
    """(method, path) → route, for the direct candidates with a fixed path that no route
    before them (in the order the router tries them) would take."""
    table: dict[tuple[str, str], DirectRoute] = {}
    for index, candidate in enumerate(candidates):
        if not candidate.direct or "{" in candidate.path:
            continue
        route = candidate.route
        for method in route.methods or ():
            if not any(_takes(earlier, method, candidate.path) for earlier in candidates[:index]):
                table[(method, candidate.path)] = DirectRoute(route, route.endpoint, candidate.scope)
    return table


def _takes(candidate: Candidate, method: str, path: str) -> bool:
    route = candidate.route
    if isinstance(route, Mount):
        regex, _, _ = compile_path(candidate.path.rstrip("/") + "/{path:path}")
        return regex.match(path) is not None
    if not hasattr(route, "methods"):  # a WebSocket route never takes an HTTP request
        return False
    if route.methods is not None and method not in route.methods:
        return False
    regex, _, _ = compile_path(candidate.path)
    return regex.match(path) is not None


class DirectRoutes:
    """Sits where the router's own ASGI app was; dispatches the table's routes itself."""

    def __init__(self, app: ASGIApp, router: Any, table: dict[tuple[str, str], DirectRoute]) -> None:
        self.app = app
        self.router = router
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            direct = self.table.get((scope["method"], scope["path"]))
            if direct is not None:
                scope.setdefault("router", self.router)
                scope["endpoint"] = direct.endpoint
                scope["route"] = direct.route
                scope["path_params"] = {}
                if direct.scope is not None:
                    state = scope.get("state")
                    check_scope((state.get("principal") if state else None) or _OPEN, direct.scope)
                response = await direct.endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
