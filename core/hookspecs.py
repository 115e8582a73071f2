"""Every hook of the host, each with the one paragraph that defines it.

Registration hooks receive a ``register`` callback and are called once per app, each
implementation with a callback that records which plugin contributed what. Hooks marked
*may be async* can be written as ``async def`` because they run inside the app's start-up,
where I/O is allowed; the others run while the app is being built and must be plain functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    import click
    from fastapi import FastAPI

    from mnemogate.core.contracts import ChatContext, MemoryEvent
    from mnemogate.core.registry import Registry

PROJECT = "mnemogate"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_hookspecs(register: Callable[[object], None]) -> None:
    """Add hook specifications of the plugin's own extension points.

    Call ``register(module_or_class)`` with an object whose functions carry ``@hookspec``;
    other plugins can then implement those hooks (for example the rate-limit plugin's
    ``register_ratelimit_stores``). Called before any other hook.
    """


@hookspec
def register_settings(register: Callable[[type], None]) -> None:
    """Contribute the plugin's settings model.

    Call ``register(model)`` once with a pydantic ``BaseModel`` subclass whose fields all have
    defaults. Its values come from ``plugins.<plugin name>`` in ``mnemogate.toml`` or from
    ``MNEMOGATE_PLUGINS__<NAME>__<FIELD>`` environment variables; a value that does not
    validate stops start-up with a message naming the plugin. Read the validated object with
    ``registry.plugin_settings(name)``.
    """


@hookspec
def register_routes(register: Callable[..., None]) -> None:
    """Contribute route packs.

    Call ``register(router, prefix="", tags=(), scope="read")`` with a FastAPI ``APIRouter``.
    ``scope`` is the API-key scope every route of the pack requires (``"read"``, ``"write"``,
    ``"admin"``) or ``None`` for a public pack. Two plugins mounting the same method and path
    stop start-up with a message naming both.
    """


@hookspec
def register_middleware(register: Callable[..., None]) -> None:
    """Contribute pure-ASGI middleware.

    Call ``register(factory, order=N, name="...", **options)``; ``factory(app, **options)``
    must return an ASGI app. Lower ``order`` runs earlier (outermost). Two middleware with the
    same order stop start-up with a message naming both plugins. The built-in orders are listed
    in PLUGINS.md.
    """


@hookspec
def register_ws_channels(register: Callable[..., None]) -> None:
    """Contribute WebSocket channels.

    Call ``register(name, path=..., scope="read", description="")``. The host mounts a
    WebSocket endpoint at ``path`` that authenticates the caller, then forwards every event
    published on the event bus under ``name`` for the caller's tenant as a JSON text frame.
    """


@hookspec
def register_migrations(register: Callable[..., None]) -> None:
    """Contribute the plugin's database migrations.

    Call ``register(version_location, metadata=None)`` with the directory of the plugin's
    Alembic revisions. Each plugin's revisions form their own branch (labelled with the plugin
    name) with their own version table, so enabling, disabling or uninstalling one plugin never
    disturbs another. ``metadata`` (the plugin's SQLAlchemy ``MetaData``) enables
    ``mnemogate db revision --autogenerate``.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add CLI sub-commands to the ``mnemogate`` click group.

    Use ``@cli.command()`` or ``cli.add_command(...)``. Only enabled plugins are asked, so a
    switched-off plugin adds no commands.
    """


@hookspec
def register_event_bus(register: Callable[..., None]) -> None:
    """Replace the in-process event bus (may be async).

    Call ``register(factory)``; ``factory(settings)`` returns an object implementing
    ``mnemogate.core.events.EventBus`` (for example one backed by Redis pub/sub so that events
    reach WebSocket clients of every instance). At most one plugin may register a bus.
    """


@hookspec
def register_storage_backends(register: Callable[..., None]) -> None:
    """Contribute a memory index for a database URL scheme (may be async).

    Call ``register(scheme, factory)``; ``factory(registry)`` returns a ``MemoryIndex`` (vector
    and keyword search over memory items, see ``mnemogate.core.contracts``) for databases whose
    URL dialect is ``scheme`` (``"sqlite"``, ``"postgresql"``, ...). The memory engine picks the
    backend matching the configured database.
    """


@hookspec
def register_embedders(register: Callable[..., None]) -> None:
    """Contribute text embedders by name (may be async).

    Call ``register(name, factory)``; ``factory(registry)`` returns an ``Embedder`` with
    ``name``, ``dim`` and ``async embed(texts) -> float32 array`` of L2-normalised rows. Load
    model weights lazily, on first use, so start-up stays fast.
    """


@hookspec
def register_memory_types(register: Callable[..., None]) -> None:
    """Contribute memory types with their service (may be async).

    Call ``register(name, service)`` where ``service`` implements ``MemoryType`` (add, get,
    update, delete, list, recall). Other plugins reach it through
    ``registry.memory_types[name]``.
    """


@hookspec
def register_providers(register: Callable[..., None], registry: Registry) -> None:
    """Contribute LLM provider adapters for the gateway (may be async).

    Call ``register(name, provider)`` where ``provider`` implements ``Provider`` (models,
    complete, stream) in the OpenAI chat format. ``registry`` gives the plugin its settings
    (``registry.plugin_settings(name)``), since providers are usually configured ones.
    """


@hookspec
def register_compaction_strategies(register: Callable[..., None], registry: Registry) -> None:
    """Contribute context compaction strategies by name (may be async).

    Call ``register(name, strategy)`` where ``strategy.compact(messages, budget=...,
    count_tokens=...)`` returns the shortened message list and what it removed. ``registry``
    gives the plugin its settings and the services (a summarising strategy may call a model
    through the gateway).
    """


@hookspec
def register_sanitizers(register: Callable[..., None]) -> None:
    """Contribute secret and PII detectors for masking (may be async).

    Call ``register(kind, detector)`` where ``detector.find(text)`` yields the spans of
    ``text`` that are secrets of that kind.
    """


@hookspec
def register_mcp_servers(register: Callable[..., None], registry: Registry) -> None:
    """Contribute MCP servers the gateway can route to (may be async).

    Call ``register(name, server)`` where ``server`` is an in-process MCP server (the ``mcp``
    SDK's ``MCPServer`` or low-level ``Server``), a factory ``server(registry)`` returning one
    (called when the gateway builds its servers, in the background after start-up; build
    ``MCPServer`` objects there), an ``McpServerModule`` naming a module whose ``build(registry)``
    is that factory (imported only then, keeping the SDK import out of start-up), or an
    ``ExternalMcpServer`` describing a stdio command or a streamable-HTTP URL. The MCP gateway
    routes ``/api/mcp-gateway/{name}/rpc`` to it. ``registry`` gives the plugin its settings,
    since external servers are usually configured ones.
    """


@hookspec(firstresult=True)
def requires_api_keys(app: FastAPI) -> bool | None:
    """Answer whether callers must present an API key right now (may be async).

    The access-control plugin answers ``True`` once keys exist. The first answer that is not
    ``None`` wins. When no plugin answers ``True``, the host serves loopback clients openly and
    refuses to bind another address unless ``allow_open`` is set.
    """


@hookspec
def startup(app: FastAPI) -> None:
    """Run once when the app starts, after migrations and resource registration (may be async).

    Open connections, start background tasks, warm caches. Plugins start in registration order
    (built-ins first); an exception stops start-up with a message naming the plugin.
    """


@hookspec
def shutdown(app: FastAPI) -> None:
    """Run once when the app stops, after in-flight requests finished (may be async).

    Flush buffers, stop background tasks, close connections. Plugins stop in reverse
    start order; an exception is logged and the others still run.
    """


@hookspec
def database_replaced(app: FastAPI) -> None:
    """The database's contents were replaced while the server kept running (may be async).

    Called after a restore from a backup has committed. Drop whatever the plugin derived from
    the old contents and keeps in memory (caches, in-memory indexes, buffered state), so it is
    rebuilt from the new contents. Errors are logged and the other plugins still run.
    """


@hookspec
def chat_request(ctx: ChatContext) -> None:
    """Transform an outgoing gateway request in place (may be async).

    A pipeline over ``ctx`` (tenant, session, request body, provider, model, plugin data):
    memory injection runs first (``tryfirst``), masking last (``trylast``), everything else
    in between; plain implementations may be async. ``wrapper=True`` implementations
    (synchronous generators, as pluggy requires) run around the rest and see any exception at
    their ``yield``. Raise an ``AppError`` to refuse the request.
    """


@hookspec
def chat_response(ctx: ChatContext) -> None:
    """Observe a finished gateway exchange (may be async).

    Runs after the client has its answer, with ``ctx.response`` (or the assembled stream),
    usage and timings filled in: request logging, episode capture, live events.
    """


@hookspec
def memory_event(event: MemoryEvent) -> None:
    """React to a memory write or recall (may be async).

    ``event`` carries tenant, memory type, action (``created``, ``updated``, ``deleted``,
    ``recalled``) and item ids. Called after the write has committed; used for WebSocket
    fan-out, metrics and consolidation triggers. Must not raise: errors are logged.
    """


HOOK_NAMES: tuple[str, ...] = tuple(
    name for name, value in list(globals().items()) if hasattr(value, f"{PROJECT}_spec")
)
