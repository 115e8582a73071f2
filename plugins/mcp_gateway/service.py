"""The MCP gateway: the servers plugins registered, JSON-RPC to them, and the tool-call log.

Every ``tools/call`` (through ``/rpc`` or a direct endpoint) is counted in metrics, published on
the ``gateway`` channel (``/ws``) as ``mcp.tool_call``, and queued; a background task writes the
queue to the call log in batches, one transaction each, and then hands each call to the
``mcp_tool_called`` hooks (the memory plugins turn them into episodes), so a call never waits on
the database or on a hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select
from starlette.requests import HTTPConnection

from mnemogate.core.contracts import (
    MCP_CALLER_STATE,
    ChatContext,
    ExternalMcpServer,
    McpCaller,
    McpServerModule,
    McpToolCall,
)
from mnemogate.core.dependencies import get_principal
from mnemogate.core.errors import NotFound, StartupError, Unavailable, describe_exception, scrub
from mnemogate.core.flusher import Flusher
from mnemogate.core.pagination import Page, newest_first, page_of_rows, page_of_sequence
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_gateway import rpc
from mnemogate.plugins.mcp_gateway.models import CallOut, CallRow, ServerOut
from mnemogate.plugins.mcp_gateway.settings import McpGatewaySettings

if TYPE_CHECKING:
    from mnemogate.plugins.mcp_gateway.upstream import Upstream

log = logging.getLogger("mnemogate.mcp_gateway")

SERVICE = "mcp_gateway"
PLUGIN = "mcp_gateway"
GATEWAY_CHANNEL = "gateway"
TOOL_CALL_EVENT = "mcp.tool_call"
DIRECT_PREFIX = "/mcp/servers"
SESSION_HEADER = "x-session-id"
SESSION_HEADER_LIMIT = 200
ERROR_LENGTH = 500
MAX_PENDING = 100_000
UNKNOWN_TOOL = "<unknown>"
# The servers and the mcp SDK they use: imported by the gateway's own task, off the readiness path.
UPSTREAM_MODULE = "mnemogate.plugins.mcp_gateway.upstream"
RETRY_SOON = {"Retry-After": "1"}
EXPECTED_SERVER = "expected an mcp MCPServer or Server, a factory returning one, or an ExternalMcpServer"


@dataclass(frozen=True, slots=True)
class CallFilters:
    session_id: str | None = None
    server: str | None = None
    tool: str | None = None


@dataclass(frozen=True, slots=True)
class RpcReply:
    """What ``/rpc`` answers: the HTTP status and the JSON-RPC body (None: no content)."""

    status: int
    body: Any


class CallLog:
    """Counts, publishes and (in batches) records every tool call, then tells the hooks."""

    def __init__(self, registry: Registry, settings: McpGatewaySettings) -> None:
        self.registry = registry
        self.settings = settings
        self._pending: list[McpToolCall] = []
        self._lock = asyncio.Lock()
        self.flusher = Flusher(self.flush, settings.flush_interval_seconds, "the MCP call log")
        metrics = registry.services.get("metrics")
        self._calls = self._seconds = None
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        if metrics is not None:
            self._calls = metrics.counter(
                "mnemogate_mcp_tool_calls_total",
                "MCP tool calls through the gateway by server, tool and outcome",
                ("server", "tool", "outcome"),
            )
            self._seconds = metrics.histogram(
                "mnemogate_mcp_tool_call_seconds", "MCP tool call latency by server", ("server",)
            )

    def start(self) -> None:
        self.flusher.start()

    async def stop(self) -> None:
        await self.flusher.stop()

    async def record(self, call: McpToolCall, known_tool: bool) -> None:
        if self._calls is not None and self._seconds is not None:
            key = (call.server, call.tool if known_tool else UNKNOWN_TOOL, call.outcome)
            children = self._children.get(key)
            if children is None:
                # Label lookups cost more than the observation; keep the children per series.
                children = self._children[key] = (self._calls.labels(*key), self._seconds.labels(call.server))
            children[0].inc()
            children[1].observe(call.latency_ms / 1000)
        await self.registry.events.publish(GATEWAY_CHANNEL, TOOL_CALL_EVENT, call.tenant, _event(call))
        if len(self._pending) >= MAX_PENDING:
            log.error("the MCP call log is %d calls behind; dropping a record", MAX_PENDING)
            return
        self._pending.append(call)

    async def flush(self) -> None:
        async with self._lock:
            calls, self._pending = self._pending, []
            if not calls:
                return
            if self.settings.log_calls:
                try:
                    async with self.registry.db.write() as session:
                        await session.execute(CallRow.__table__.insert(), [self._row(c) for c in calls])
                except BaseException:
                    self._pending = calls + self._pending
                    raise
        for call in calls:
            await self.registry.host.broadcast("mcp_tool_called", call=call)

    def _row(self, call: McpToolCall) -> dict[str, Any]:
        limit = self.settings.log_arguments_chars
        arguments = orjson.dumps(call.arguments).decode()[:limit] if limit else None
        return {
            "id": call.id,
            "tenant": call.tenant,
            "session_id": call.session_id,
            "request_id": call.request_id,
            "server": call.server,
            "tool": call.tool[:200],
            "arguments": arguments,
            "outcome": call.outcome,
            "error": call.error[:ERROR_LENGTH] if call.error else None,
            "latency_ms": call.latency_ms,
            "created_at": call.at,
        }

    async def list(self, tenant: str, filters: CallFilters, limit: int, cursor: str | None) -> Page[CallOut]:
        await self.flush()
        query = select(CallRow).where(CallRow.tenant == tenant)
        if filters.session_id is not None:
            query = query.where(CallRow.session_id == filters.session_id)
        if filters.server is not None:
            query = query.where(CallRow.server == filters.server)
        if filters.tool is not None:
            query = query.where(CallRow.tool == filters.tool)
        query = newest_first(query, CallRow.created_at, CallRow.id, limit=limit, cursor=cursor)
        async with self.registry.db.read() as session:
            rows = list((await session.scalars(query)).all())
        return page_of_rows(rows, limit, _call_out, lambda row: (row.created_at, row.id))


def _event(call: McpToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "session_id": call.session_id,
        "request_id": call.request_id,
        "server": call.server,
        "tool": call.tool,
        "outcome": call.outcome,
        "error": call.error,
        "latency_ms": round(call.latency_ms, 3),
    }


def _call_out(row: CallRow) -> CallOut:
    arguments: Any = None
    if row.arguments is not None:
        try:
            arguments = orjson.loads(row.arguments)
        except orjson.JSONDecodeError:
            arguments = row.arguments  # cut short by log_arguments_chars: kept as text
    return CallOut(
        id=row.id,
        session_id=row.session_id,
        request_id=row.request_id,
        server=row.server,
        tool=row.tool,
        arguments=arguments,
        outcome=row.outcome,  # type: ignore[arg-type]
        error=row.error,
        latency_ms=row.latency_ms,
        created_at=row.created_at,
    )


class McpGateway:
    def __init__(self, registry: Registry, settings: McpGatewaySettings) -> None:
        self.registry = registry
        self.settings = settings
        self.log = CallLog(registry, settings)
        self.servers: dict[str, Upstream] = {}
        self._owners: dict[str, str] = {}
        self._started = asyncio.Event()
        self._failure: str | None = None
        self._stopping = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Check every registration, then build and start the servers in the gateway's own task.
        Importing the mcp SDK and starting the servers takes a second or more, which the app's
        readiness does not wait for: a call that comes meanwhile waits (see ``server``). The SDK
        contexts (task groups, cancel scopes) are entered and left by that one task, since a
        host may run start-up and shutdown in different tasks (test fixtures do)."""
        self._owners = {
            name: plugin for (kind, name), plugin in self.registry.owners.items() if kind == "mcp_servers"
        }
        for name, value in self.registry.mcp_servers.items():
            if not (isinstance(value, ExternalMcpServer) or _is_sdk_server(value) or callable(value)):
                raise StartupError(
                    f"plugin {self._plugin(name)!r} registered MCP server {name!r} as a "
                    f"{type(value).__name__}: {EXPECTED_SERVER}"
                )
        self.log.start()
        self._keeper = asyncio.get_running_loop().create_task(self._keep(), name="mcp-gateway")

    async def _keep(self) -> None:
        try:
            # In a worker thread, so that the event loop keeps answering while the SDK imports.
            upstream = await asyncio.to_thread(importlib.import_module, UPSTREAM_MODULE)
            # Every server is built (factories called) before any starts.
            for name, value in self.registry.mcp_servers.items():
                self.servers[name] = await self._upstream(upstream, name, value)
            async with AsyncExitStack() as stack:
                for name, server in list(self.servers.items()):
                    own = await stack.enter_async_context(AsyncExitStack())
                    try:
                        await server.start(own)
                    except Exception as exc:
                        await own.aclose()
                        self.servers[name] = self._failed(upstream, name, server.transport, "start", exc)
                failed = sum(server.status == "failed" for server in self.servers.values())
                log.info("MCP gateway: %d servers started, %d failed", len(self.servers) - failed, failed)
                self._started.set()
                await self._stopping.wait()
        except Exception as exc:
            if self._started.is_set():
                raise  # leaving the servers' contexts failed: stop() reports it
            self._failure = f"the MCP servers could not be started: {describe_exception(exc)}"
            log.error(self._failure)
        finally:
            self._started.set()

    async def stop(self) -> None:
        self._stopping.set()
        if self._keeper is not None:
            if not self._started.is_set():
                self._failure = "the MCP gateway stopped before its servers had started"
                self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        await self.log.stop()

    def _plugin(self, name: str) -> str:
        return self._owners.get(name, "?")

    async def _upstream(self, upstream: Any, name: str, value: Any) -> Upstream:
        settings = self.settings
        plugin = self._plugin(name)
        if isinstance(value, ExternalMcpServer):
            limits = upstream.Limits(
                value.timeout_seconds or settings.timeout_seconds,
                value.max_concurrency or settings.max_concurrency,
            )
            return upstream.ExternalServer(  # type: ignore[no-any-return]
                name,
                plugin,
                value,
                limits,
                self._observe,
                connect_timeout=settings.connect_timeout_seconds,
                ping_interval=settings.ping_interval_seconds,
                backoff=settings.restart_backoff_seconds,
                backoff_max=settings.restart_backoff_max_seconds,
            )
        server = value
        if not _is_sdk_server(value):
            try:
                build = await asyncio.to_thread(value.load) if isinstance(value, McpServerModule) else value
                with upstream.sdk_leaves_logging_alone():
                    server = build(self.registry)
            except Exception as exc:
                return self._failed(upstream, name, "in-process", "build", exc)
            if not _is_sdk_server(server):
                message = (
                    f"plugin {plugin!r}: the factory of MCP server {name!r} returned a "
                    f"{type(server).__name__}: {EXPECTED_SERVER}"
                )
                log.error(message)
                return upstream.FailedServer(name, plugin, "in-process", message)  # type: ignore[no-any-return]
        return upstream.InProcessServer(  # type: ignore[no-any-return]
            name,
            plugin,
            server,
            upstream.Limits(settings.timeout_seconds, settings.max_concurrency),
            self._observe,
            loopback_only_hosts=self.registry.settings.binds_loopback,
        )

    def _failed(self, upstream: Any, name: str, transport: Any, step: str, exc: Exception) -> Upstream:
        plugin = self._plugin(name)
        log.error("plugin %r: MCP server %r failed to %s: %s", plugin, name, step, describe_exception(exc))
        reason = f"plugin {plugin!r}: MCP server {name!r} failed to {step}: {upstream.failure_reason(exc)}"
        return upstream.FailedServer(name, plugin, transport, reason)  # type: ignore[no-any-return]

    async def wait_started(self) -> None:
        """Return once every server has started (or failed to); a call made while the gateway is
        still starting its servers waits here, up to the gateway's call timeout."""
        if self._started.is_set():
            return
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                await self._started.wait()
        except TimeoutError:
            raise Unavailable(
                "the MCP servers are still starting", code="mcp_gateway_starting", headers=RETRY_SOON
            ) from None

    # -- calls ---------------------------------------------------------------------------------

    async def server(self, name: str) -> Upstream:
        """The running server ``name``; while the servers are starting, once they have."""
        if name not in self.registry.mcp_servers and name not in self.servers:
            raise NotFound(f"no MCP server named {name[:64]!r}", code="mcp_server_not_found")
        await self.wait_started()
        upstream = self.servers.get(name)
        if upstream is None:
            message = self._failure or "the MCP gateway is not running"
            raise Unavailable(message, code="mcp_server_unavailable")
        if upstream.status == "failed":
            raise Unavailable(upstream.last_error or "failed to start", code="mcp_server_unavailable")
        return upstream

    def identify(self, connection: HTTPConnection) -> McpCaller:
        """Who is calling, put where in-process tools find it: the tenant, and the session the
        ``X-Session-ID`` header names (through the sessions plugin, as chat requests do) or else
        the tenant's active session."""
        principal = get_principal(connection)
        sessions = self.registry.services.get("sessions")
        given = connection.headers.get(SESSION_HEADER)
        session_id: str | None = None
        if given:
            given = given[:SESSION_HEADER_LIMIT]
            if sessions is not None:
                ctx = ChatContext(principal=principal, body={}, session_id=given, registry=self.registry)
                sessions.resolve(ctx)
                session_id = ctx.session_id
            else:
                session_id = given
        elif sessions is not None:
            session_id = sessions.auto_status(principal.tenant).active_session_id
        state = connection.scope.setdefault("state", {})
        caller = McpCaller(principal.tenant, session_id, state.get("request_id"))
        state[MCP_CALLER_STATE] = caller
        return caller

    async def rpc(self, upstream: Upstream, body: bytes, http_request: Any) -> RpcReply:
        try:
            calls, batch = rpc.parse_body(body)
        except rpc.RpcError as exc:
            return RpcReply(400, rpc.error_response(None, exc))

        async def handle(call: rpc.Call) -> dict[str, Any]:
            return await upstream.request(call.method, call.params, http_request)

        responses = await rpc.answer(calls, handle)
        if not responses:
            return RpcReply(202, None)
        return RpcReply(200, responses if batch else responses[0])

    async def _observe(
        self,
        server: str,
        caller: McpCaller,
        tool: str,
        arguments: dict[str, Any],
        result: dict[str, Any] | None,
        error: str | None,
        seconds: float,
    ) -> None:
        if error is not None:
            outcome, message = "error", error
        elif result is not None and result.get("isError"):
            outcome, message = "tool_error", _tool_error_text(result)
        else:
            outcome, message = "ok", None
        call = McpToolCall(
            id=str(uuid.uuid4()),
            tenant=caller.tenant,
            session_id=caller.session_id,
            request_id=caller.request_id,
            server=server,
            tool=tool,
            arguments=arguments,
            outcome=outcome,  # type: ignore[arg-type]
            error=scrub(message) if message else None,
            latency_ms=seconds * 1000,
            registry=self.registry,
        )
        upstream = self.servers.get(server)
        await self.log.record(call, known_tool=upstream is not None and tool in upstream.tools)

    # -- listings ------------------------------------------------------------------------------

    async def listing(self, limit: int, cursor: str | None) -> Page[ServerOut]:
        await self.wait_started()
        items = [self._server_out(u) for u in self.servers.values()]
        return page_of_sequence(items, limit, cursor)

    @staticmethod
    def _server_out(upstream: Upstream) -> ServerOut:
        return ServerOut(
            name=upstream.name,
            plugin=upstream.plugin,
            transport=upstream.transport,
            status=upstream.status,
            tools=list(upstream.tools),
            endpoint=f"{DIRECT_PREFIX}/{upstream.name}" if upstream.transport == "in-process" else None,
            restarts=upstream.restarts,
            last_error=upstream.last_error,
        )


def _is_sdk_server(value: Any) -> bool:
    return hasattr(value, "streamable_http_app") and hasattr(value, "middleware")


def _tool_error_text(result: dict[str, Any]) -> str:
    texts = [c.get("text", "") for c in result.get("content") or () if isinstance(c, dict)]
    return " ".join(t for t in texts if t) or "the tool reported an error"


async def start(registry: Registry) -> None:
    gateway = McpGateway(registry, registry.plugin_settings(PLUGIN))
    await gateway.start()
    registry.provide(SERVICE, gateway, plugin=PLUGIN)


def configured_servers(registry: Registry) -> dict[str, ExternalMcpServer]:
    settings: McpGatewaySettings = registry.plugin_settings(PLUGIN)
    return {server.name: server.describe() for server in settings.servers}
