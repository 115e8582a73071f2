"""``create_app(settings)``: the FastAPI app, built entirely from the enabled plugins' hooks.

Start-up (the lifespan) opens the database, runs every enabled plugin's migrations, collects
resources, starts the event bus and calls ``startup`` hooks; shutdown closes WebSockets, calls
``shutdown`` hooks in reverse, stops the bus and takes a final checkpoint. On SIGTERM the server
(uvicorn) stops accepting, lets in-flight requests finish within ``graceful_timeout``, then runs
the shutdown half.
"""

from __future__ import annotations

import gc
import inspect
import logging
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, WebSocket
from fastapi.routing import APIWebSocketRoute
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnemogate.core import __version__
from mnemogate.core.contracts import MountedRoute, WSChannel
from mnemogate.core.db import Database, Migrator
from mnemogate.core.dependencies import get_principal, require_scope
from mnemogate.core.errors import (
    ERROR_RESPONSES,
    StartupError,
    UnexpectedErrorMiddleware,
    describe_exception,
    install_error_handlers,
)
from mnemogate.core.logs import configure_logging, flush_logs
from mnemogate.core.plugins import PluginHost, collector_paused
from mnemogate.core.registry import Registry
from mnemogate.core.routing import Candidate, DirectRoutes, direct_table, takes_only_the_request
from mnemogate.core.settings import Settings, load_settings

try:
    from fastapi.routing import iter_route_contexts as _iter_route_contexts
except ImportError:  # FastAPI before 0.137 flattens included routers itself
    _iter_route_contexts = None

log = logging.getLogger("mnemogate.app")

# Traces and metrics are the observability plugin's (its settings, its tracer provider). FastAPI
# versions with telemetry of their own would otherwise look up OpenTelemetry's global providers
# (environment variables included) on every request to find out that none is configured.
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)

CORE = "core"


@collector_paused()
def create_app(
    settings: Settings | None = None,
    *,
    host: PluginHost | None = None,
    extra_plugins: Iterable[object] = (),
    strict_routes: bool = True,
    configure_logs: bool = True,
) -> FastAPI:
    """Build the app from the enabled plugins.

    ``host`` reuses plugins already loaded (the CLI's); otherwise they are loaded from
    ``settings``. ``extra_plugins`` registers plugin objects in code (tests, embedding
    applications).
    ``strict_routes=False`` flags duplicate routes in the inventory instead of refusing them
    (used by ``mnemogate routes`` to show what clashes).
    """
    settings = settings or load_settings()
    if configure_logs:
        configure_logging(settings.log_level, settings.log_format, settings.log_tracebacks)
    host = host or PluginHost.build(
        disabled=settings.plugins.disabled, load_plugins=settings.load_plugins, extra_plugins=extra_plugins
    )
    registry = Registry.build(settings, host)
    app = FastAPI(
        title="mnemogate",
        version=__version__,
        description="Long-term memory for AI agents and an LLM gateway.",
        lifespan=_lifespan,
        redoc_url=None,
        **_NO_NATIVE_TELEMETRY,
    )
    app.state.registry = registry
    install_error_handlers(app)
    _record_core_routes(app, registry)
    direct: dict[tuple[str, Any], str | None] = {}
    for pack in registry.routes:
        before = len(app.router.routes)
        direct.update(
            ((pack.prefix + route.path, route.endpoint), pack.scope)
            for route in pack.router.routes
            if takes_only_the_request(route, pack.router.dependencies)
        )
        app.include_router(
            pack.router,
            prefix=pack.prefix,
            tags=list(pack.tags) or None,
            dependencies=[require_scope(pack.scope)] if pack.scope else None,
            responses=ERROR_RESPONSES,
        )
        for path, route in _effective_routes(app.router.routes[before:]):
            _record(registry, path, route, pack.plugin, pack.scope)
            registry.route_templates[id(route)] = path
    for channel in registry.ws_channels.values():
        app.add_api_websocket_route(channel.path, _channel_endpoint(channel), name=f"ws:{channel.name}")
        registry.mounted.append(
            MountedRoute(
                "GET", channel.path, channel.plugin, channel.scope, f"ws:{channel.name}", "websocket"
            )
        )
    _check_duplicates(registry, strict=strict_routes)
    _install_middleware(app, registry)
    _install_direct_routes(app, direct)
    return app


def app_factory() -> FastAPI:
    """Entry for ``uvicorn --factory`` and for workers started by ``mnemogate serve``."""
    return create_app()


# -- routes --------------------------------------------------------------------------------------


def _effective_routes(routes: list[Any]) -> Iterable[tuple[str, Any]]:
    """(full path, route) for routes just mounted. FastAPI 0.137+ keeps included routers
    lazily and exposes their routes through ``iter_route_contexts``; older versions copy the
    routes, with the full path, into the app's route list."""
    if _iter_route_contexts is None:
        return [(route.path, route) for route in routes]
    return [(context.path, context.original_route) for context in _iter_route_contexts(routes)]


def _install_direct_routes(app: FastAPI, direct: dict[tuple[str, Any], str | None]) -> None:
    """Route the request-only endpoints of fixed paths past FastAPI's matching and dependency
    solver (see ``core/routing.py``); ``direct`` maps (full path, endpoint) to the pack's scope."""
    candidates = []
    for path, route in _effective_routes(app.router.routes):
        key = (path, getattr(route, "endpoint", None))
        candidates.append(Candidate(path, route, key in direct, direct.get(key)))
    table = direct_table(candidates)
    if table:
        app.router.middleware_stack = DirectRoutes(app.router.middleware_stack, app.router, table)


def _record_core_routes(app: FastAPI, registry: Registry) -> None:
    for path, route in _effective_routes(app.router.routes):
        _record(registry, path, route, CORE, None)


_CONVERTOR = re.compile(r":\w+}")


def _record(registry: Registry, path: str, route: Any, plugin: str, scope: str | None) -> None:
    path = _CONVERTOR.sub("}", path)  # "/api/sessions/{session_id:uuid}" is listed as "{session_id}"
    if isinstance(route, Route):
        for method in sorted(route.methods or ()):
            if method != "HEAD" or route.methods == {"HEAD"}:
                registry.mounted.append(MountedRoute(method, path, plugin, scope, route.name))
    elif isinstance(route, WebSocketRoute | APIWebSocketRoute):
        registry.mounted.append(MountedRoute("GET", path, plugin, scope, route.name, "websocket"))
    elif isinstance(route, Mount):
        registry.mounted.append(MountedRoute("ANY", path, plugin, scope, route.name or path))


def duplicate_routes(mounted: Iterable[MountedRoute]) -> dict[tuple[str, str], list[str]]:
    owners: dict[tuple[str, str], list[str]] = {}
    for route in mounted:
        owners.setdefault((route.method, route.path), []).append(route.plugin)
    return {key: plugins for key, plugins in owners.items() if len(plugins) > 1}


def _check_duplicates(registry: Registry, *, strict: bool) -> None:
    clashes = duplicate_routes(registry.mounted)
    if clashes and strict:
        described = "; ".join(
            f"{method} {path} (plugins {', '.join(repr(p) for p in plugins)})"
            for (method, path), plugins in sorted(clashes.items())
        )
        raise StartupError(f"duplicate routes: {described}")


def _channel_endpoint(channel: WSChannel) -> Any:
    async def endpoint(websocket: WebSocket) -> None:
        principal = get_principal(websocket)
        if not principal.allows(channel.scope):
            await websocket.close(code=1008, reason="a valid API key with the required scope is needed")
            return
        await websocket.app.state.registry.hub.serve(websocket, channel, principal)

    endpoint.__name__ = f"ws_{channel.name}"
    return endpoint


# -- middleware ----------------------------------------------------------------------------------


def _install_middleware(app: FastAPI, registry: Registry) -> None:
    # Starlette runs user_middleware first-to-last, outermost first.
    stack = [Middleware(StartupFailureMessage, registry=registry)]
    stack += [
        Middleware(spec.factory, **spec.options)
        for spec in sorted(registry.middleware, key=lambda m: m.order)
    ]
    stack.append(Middleware(UnexpectedErrorMiddleware))
    app.user_middleware = stack


class StartupFailureMessage:
    """Reports a failed start-up with its one-line reason instead of Starlette's traceback."""

    def __init__(self, app: ASGIApp, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def clean_send(message: Message) -> None:
            if message["type"] in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
                message = {**message, "message": self.registry.startup_error or "start-up failed"}
            await send(message)

        await self.app(scope, receive, clean_send)


# -- lifecycle -----------------------------------------------------------------------------------


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    registry: Registry = app.state.registry
    host = registry.host
    started: list[str] = []
    stage = "opening the database"
    with collector_paused():
        try:
            registry.db = Database(registry.settings.resolved_database_url)
            if registry.settings.auto_migrate:
                stage = "migrating the database"
                await Migrator(registry.db, registry.migrations).upgrade()
            stage = "collecting plugin resources"
            await registry.collect_resources()
            stage = "starting the event bus"
            await registry.events.bus.start()
            for impl in host.impls_in_registration_order("startup"):
                stage = f"starting plugin {impl.plugin_name!r}"
                result = impl.function(**{a: app for a in impl.argnames})
                if inspect.isawaitable(result):
                    await result
                started.append(impl.plugin_name)
            stage = "checking who can reach the API"
            await _check_exposure(app, registry)
        except BaseException as exc:
            registry.startup_error = (
                str(exc)
                if isinstance(exc, StartupError)
                else f"start-up failed {stage}: {describe_exception(exc)}"
            )
            log.error(registry.startup_error)
            await _stop(app, registry, started)
            raise
    log.info(
        "mnemogate %s ready: %d plugins, %d routes, database %s",
        __version__,
        len(host.enabled_names()),
        len(registry.mounted),
        registry.db.dialect,
    )
    # Everything start-up made lives as long as the app: moved out of the collector's reach, a
    # full collection no longer walks the whole app (hundreds of thousands of objects, tens of
    # milliseconds) in the middle of some request. Shutdown hands them back.
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        await _stop(app, registry, started)


async def _check_exposure(app: FastAPI, registry: Registry) -> None:
    settings = registry.settings
    restricted = await first_result(registry.host, "requires_api_keys", app=app)
    if restricted:
        return
    if settings.binds_loopback:
        log.warning(
            "no API keys exist: the API is open to local clients only (create one: mnemogate keys create)"
        )
        return
    if not settings.allow_open:
        raise StartupError(
            f"refusing to serve {settings.host} without API keys: create one with `mnemogate keys create "
            "--scope admin`, or set MNEMOGATE_ALLOW_OPEN=true to serve an open API on purpose"
        )
    log.warning("serving an open API on %s without API keys (MNEMOGATE_ALLOW_OPEN is set)", settings.host)


async def first_result(host: PluginHost, hook_name: str, **kwargs: Any) -> Any:
    """Call a ``firstresult`` hook whose implementations may be async; the first non-None wins."""
    for impl in host.impls(hook_name):
        result = impl.function(**{a: kwargs[a] for a in impl.argnames})
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            return result
    return None


async def _stop(app: FastAPI, registry: Registry, started: list[str]) -> None:
    if registry.hub is not None:
        await registry.hub.close_all()
    running = set(started)
    for impl in reversed(registry.host.impls_in_registration_order("shutdown")):
        if impl.plugin_name not in running:
            continue
        try:
            result = impl.function(**{a: app for a in impl.argnames})
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            log.error("plugin %r failed to shut down: %s", impl.plugin_name, describe_exception(exc))
    started.clear()
    try:
        await registry.events.bus.stop()
    except Exception as exc:
        log.error("event bus failed to stop: %s", describe_exception(exc))
    if registry.db_open:
        try:
            await registry.db.close()
        except Exception as exc:
            log.error("database failed to close cleanly: %s", describe_exception(exc))
    registry.reset_runtime()
    flush_logs()
