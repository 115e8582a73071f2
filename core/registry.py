"""The registry: everything the enabled plugins contributed, filled from the registration hooks.

Structural hooks (settings, routes, middleware, WebSocket channels, migrations) are collected
when the app is built; resource hooks (event bus, storage backends, embedders, memory types,
providers, strategies, detectors, MCP servers) at start-up, where implementations may be async.
Every entry remembers its plugin, so a clash names both plugins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, ValidationError
from starlette.types import Scope

from mnemogate.core.contracts import SCOPES, MiddlewareSpec, MigrationSpec, MountedRoute, RoutePack, WSChannel
from mnemogate.core.errors import StartupError
from mnemogate.core.events import Events, InProcessEventBus, WebSocketHub
from mnemogate.core.plugins import PluginHost
from mnemogate.core.settings import Settings, describe_validation_error

if TYPE_CHECKING:
    from mnemogate.core.db import Database

# hook name -> registry attribute holding {name: object}
RESOURCE_HOOKS: dict[str, str] = {
    "register_storage_backends": "storage_backends",
    "register_embedders": "embedders",
    "register_memory_types": "memory_types",
    "register_providers": "providers",
    "register_compaction_strategies": "compaction_strategies",
    "register_sanitizers": "detectors",
    "register_mcp_servers": "mcp_servers",
}

# What the app is built from; everything else is registered at start-up and reset at shutdown.
STRUCTURAL_KINDS = frozenset({"settings", "WebSocket channel", "migrations"})


@dataclass
class Registry:
    settings: Settings
    host: PluginHost
    settings_models: dict[str, BaseModel] = field(default_factory=dict)
    routes: list[RoutePack] = field(default_factory=list)
    middleware: list[MiddlewareSpec] = field(default_factory=list)
    ws_channels: dict[str, WSChannel] = field(default_factory=dict)
    migrations: list[MigrationSpec] = field(default_factory=list)
    storage_backends: dict[str, Any] = field(default_factory=dict)
    embedders: dict[str, Any] = field(default_factory=dict)
    memory_types: dict[str, Any] = field(default_factory=dict)
    providers: dict[str, Any] = field(default_factory=dict)
    compaction_strategies: dict[str, Any] = field(default_factory=dict)
    detectors: dict[str, Any] = field(default_factory=dict)
    mcp_servers: dict[str, Any] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    mounted: list[MountedRoute] = field(default_factory=list)
    # id(route object) -> full path template, for labelling requests by route (see route_template)
    route_templates: dict[int, str] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    events: Events = field(default_factory=lambda: Events(InProcessEventBus()))
    hub: WebSocketHub | None = None
    _db: Database | None = None
    started_at: float = field(default_factory=time.time)
    startup_error: str | None = None

    def __post_init__(self) -> None:
        self.hub = WebSocketHub(self.events)

    # -- access --------------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("the database is not open yet (it opens at start-up)")
        return self._db

    @db.setter
    def db(self, value: Database) -> None:
        self._db = value

    @property
    def db_open(self) -> bool:
        return self._db is not None

    def plugin_settings(self, plugin: str) -> Any:
        return self.settings_models[plugin]

    def provide(self, name: str, service: Any, *, plugin: str) -> None:
        """Publish a service for other plugins under a well-known name (see PLUGINS.md)."""
        self.claim("service", name, plugin)
        self.services[name] = service

    def reset_runtime(self) -> None:
        """Forget what start-up registered (resources, services, the bus, the database), so the
        same app can start again after it stopped, as test clients and reloaders do."""
        for attribute in RESOURCE_HOOKS.values():
            getattr(self, attribute).clear()
        self.services.clear()
        self.owners = {key: plugin for key, plugin in self.owners.items() if key[0] in STRUCTURAL_KINDS}
        self.events.bus = InProcessEventBus()
        self._db = None

    def claim(self, kind: str, name: str, plugin: str) -> None:
        owner = self.owners.get((kind, name))
        if owner is not None:
            raise StartupError(
                f"{kind} {name!r} is registered by both plugin {owner!r} and plugin {plugin!r}"
            )
        self.owners[(kind, name)] = plugin

    # -- structural hooks ----------------------------------------------------------------------

    @classmethod
    def build(cls, settings: Settings, host: PluginHost) -> Registry:
        registry = cls(settings=settings, host=host)
        host.call_each("register_settings", lambda p: {"register": registry._settings_register(p)})
        host.call_each("register_routes", lambda p: {"register": registry._routes_register(p)})
        host.call_each("register_middleware", lambda p: {"register": registry._middleware_register(p)})
        host.call_each("register_ws_channels", lambda p: {"register": registry._channel_register(p)})
        host.call_each("register_migrations", lambda p: {"register": registry._migration_register(p)})
        return registry

    def _settings_register(self, plugin: str) -> Callable[[type[BaseModel]], None]:
        def register(model: type[BaseModel]) -> None:
            self.claim("settings", plugin, plugin)
            raw = self.settings.plugins.raw(plugin)
            unknown = sorted(set(raw) - set(model.model_fields))
            if unknown:
                raise StartupError(
                    f"plugin {plugin!r}: unknown setting(s) plugins.{plugin}.{', '.join(unknown)}; "
                    f"known: {', '.join(sorted(model.model_fields)) or 'none'}"
                )
            try:
                self.settings_models[plugin] = model.model_validate(raw)
            except ValidationError as exc:
                raise StartupError(
                    f"plugin {plugin!r}: invalid setting plugins.{plugin}.{describe_validation_error(exc)}"
                ) from None

        return register

    def _routes_register(self, plugin: str) -> Callable[..., None]:
        def register(
            router: APIRouter,
            prefix: str = "",
            tags: tuple[str, ...] | list[str] = (),
            scope: str | None = "read",
        ) -> None:
            if scope is not None and scope not in SCOPES:
                raise StartupError(
                    f"plugin {plugin!r}: unknown scope {scope!r} (use one of {', '.join(SCOPES)})"
                )
            self.routes.append(RoutePack(plugin, router, prefix, tuple(tags), scope))

        return register

    def _middleware_register(self, plugin: str) -> Callable[..., None]:
        def register(
            factory: Callable[..., Any], order: int, name: str | None = None, **options: Any
        ) -> None:
            label = name or getattr(factory, "__name__", "middleware")
            for existing in self.middleware:
                if existing.order == order:
                    raise StartupError(
                        f"middleware order {order} is claimed by both plugin {existing.plugin!r} "
                        f"({existing.name}) and plugin {plugin!r} ({label})"
                    )
            self.middleware.append(MiddlewareSpec(plugin, label, order, factory, options))

        return register

    def _channel_register(self, plugin: str) -> Callable[..., None]:
        def register(
            name: str, path: str | None = None, scope: str | None = "read", description: str = ""
        ) -> None:
            self.claim("WebSocket channel", name, plugin)
            self.ws_channels[name] = WSChannel(plugin, name, path or f"/ws/{name}", scope, description)

        return register

    def _migration_register(self, plugin: str) -> Callable[..., None]:
        def register(version_location: str, metadata: Any = None) -> None:
            self.claim("migrations", plugin, plugin)
            self.migrations.append(MigrationSpec(plugin, str(version_location), metadata))

        return register

    # -- resource hooks (at start-up) ----------------------------------------------------------

    async def collect_resources(self) -> None:
        bus_factories: list[tuple[str, Callable[..., Any]]] = []

        def bus_register(plugin: str) -> Callable[[Callable[..., Any]], None]:
            def register(factory: Callable[..., Any]) -> None:
                self.claim("event bus", "bus", plugin)
                bus_factories.append((plugin, factory))

            return register

        await self.host.call_each_async("register_event_bus", lambda p: {"register": bus_register(p)})
        if bus_factories:
            self.events.bus = bus_factories[0][1](self.settings)

        for hook, attribute in RESOURCE_HOOKS.items():
            target: dict[str, Any] = getattr(self, attribute)

            def keyed(plugin: str, kind: str = attribute, target: dict[str, Any] = target) -> dict[str, Any]:
                def register(name: str, value: Any) -> None:
                    self.claim(kind, name, plugin)
                    target[name] = value

                return {"register": register, "registry": self}

            await self.host.call_each_async(hook, keyed)


def route_template(registry: Registry, scope: Scope) -> str | None:
    """The path template of the route that served a request (``/api/v1/keys/{key_id}``)."""
    route = scope.get("route")
    if route is None:
        return None
    return registry.route_templates.get(id(route)) or getattr(route, "path", None)


def registry_of(scope: Scope) -> Registry:
    """The registry from an ASGI scope, for pure-ASGI middleware (Starlette puts the app there)."""
    return scope["app"].state.registry
