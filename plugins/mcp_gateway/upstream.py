"""The servers the gateway routes to: in-process ones (the ``mcp`` SDK's servers, called directly)
and external ones (a stdio subprocess or a streamable-HTTP URL, kept connected).

Every server answers ``request(method, params, http_request)`` with the JSON-RPC result object or
raises ``RpcError``; each call is bounded by the server's timeout (waiting for a free slot
included) and its concurrency limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.runner import ServerRunner, aclose_shielded
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import CONNECTION_CLOSED, INTERNAL_ERROR, INVALID_PARAMS, REQUEST_TIMEOUT
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from mnemogate.core.contracts import ExternalMcpServer, McpCaller
from mnemogate.core.errors import describe_exception, scrub
from mnemogate.plugins.mcp_gateway.rpc import RpcError

log = logging.getLogger("mnemogate.mcp_gateway")

Transport = Literal["in-process", "stdio", "streamable-http"]
Status = Literal["starting", "ready", "connecting", "reconnecting", "stopped", "failed"]
# Called for every finished tools/call: (server, caller, tool, arguments, result or None, error, seconds).
CallObserver = Callable[
    [str, McpCaller, str, dict[str, Any], dict[str, Any] | None, str | None, float], Awaitable[None]
]
STDERR_LINE_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Limits:
    timeout_seconds: float
    max_concurrency: int


def rpc_error(exc: BaseException) -> RpcError:
    """What a server-side failure looks like on the wire; nothing unexpected leaks."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, MCPError):
        return RpcError(exc.code, exc.message, exc.data)
    if isinstance(exc, ValidationError):
        return RpcError(INVALID_PARAMS, "Invalid params")
    if isinstance(exc, ValueError):
        return RpcError(INVALID_PARAMS, f"Invalid params: {scrub(str(exc))[:300]}")
    if isinstance(exc, TimeoutError):
        return RpcError(REQUEST_TIMEOUT, "Request timed out")
    log.error("MCP request failed: %s", describe_exception(exc))
    return RpcError(INTERNAL_ERROR, "Internal error")


class Upstream(Protocol):
    name: str
    plugin: str
    transport: Literal["in-process", "stdio", "streamable-http"]
    status: Status
    tools: list[str]
    restarts: int
    last_error: str | None

    async def start(self, stack: AsyncExitStack) -> None: ...
    async def request(
        self, method: str, params: dict[str, Any] | None, http_request: Any
    ) -> dict[str, Any]: ...


@contextlib.contextmanager
def sdk_leaves_logging_alone() -> Iterator[None]:
    """``MCPServer()`` calls ``logging.basicConfig``, which installs a handler on the root logger
    when it has none (as in a plain server): every mnemogate log line would then print twice.
    With a placeholder handler on the root logger, ``basicConfig`` does nothing."""
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        yield
    finally:
        root.removeHandler(placeholder)


# -- in-process servers -------------------------------------------------------------------------


@dataclass
class _InProcessDispatch:
    """The per-request context the SDK's runner needs: no back channel (the gateway's HTTP
    exchange carries one answer), and the HTTP request as the message's metadata, so tools read
    their caller from ``ctx.request_context.request`` exactly as on the streamable-HTTP endpoint."""

    request_id: int
    message_metadata: ServerMessageMetadata
    transport: TransportContext = field(
        default_factory=lambda: TransportContext(kind="mnemogate-gateway", can_send_request=False)
    )
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)

    @property
    def can_send_request(self) -> bool:
        return False

    async def send_raw_request(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> Any:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        return None

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None


class InProcessServer:
    """A server of this process: ``/rpc`` calls its handlers directly through the SDK's runner
    (no subprocess, no socket, no JSON framing); its streamable-HTTP endpoint is the SDK's
    session manager. A middleware on the server bounds and observes every ``tools/call``,
    whichever way it came in."""

    transport: Literal["in-process"] = "in-process"

    def __init__(
        self,
        name: str,
        plugin: str,
        server: Any,
        limits: Limits,
        observe: CallObserver,
        *,
        loopback_only_hosts: bool,
    ) -> None:
        self.name = name
        self.plugin = plugin
        self.server = server
        self.limits = limits
        self.observe = observe
        self.loopback_only_hosts = loopback_only_hosts
        self.status: Status = "starting"
        self.tools: list[str] = []
        self.restarts = 0
        self.last_error: str | None = None
        self._slots = asyncio.Semaphore(limits.max_concurrency)
        self._ids = itertools.count(1)
        self._lowlevel: Any = None
        self._lifespan_state: Any = None
        self._session_manager: Any = None
        self._stack: AsyncExitStack | None = None
        self._runners: dict[str, ServerRunner[Any]] = {}

    async def start(self, stack: AsyncExitStack) -> None:
        security = (
            TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
            if self.loopback_only_hosts
            else TransportSecuritySettings(enable_dns_rebinding_protection=False)
        )
        # A fresh session manager each start: the SDK runs one only once.
        self.server.streamable_http_app(streamable_http_path="/", transport_security=security)
        self._session_manager = self.server.session_manager
        self._lowlevel = self._session_manager.app
        # A server registered as an object (not a factory) outlives a restart: drop the bound of
        # the previous start before adding this one.
        self.server.middleware[:] = [
            m for m in self.server.middleware if not isinstance(getattr(m, "__self__", None), InProcessServer)
        ]
        self.server.middleware.append(self._bound)
        self._lifespan_state = await stack.enter_async_context(self._lowlevel.lifespan(self._lowlevel))
        await stack.enter_async_context(self._session_manager.run())
        self._stack = stack
        self._runners.clear()
        listed = await self.request("tools/list", None, None)
        self.tools = [tool["name"] for tool in listed.get("tools", [])]
        self.status = "ready"
        stack.callback(self._stopped)

    def _stopped(self) -> None:
        self.status = "stopped"

    async def request(self, method: str, params: dict[str, Any] | None, http_request: Any) -> dict[str, Any]:
        runner = self._runners.get(_protocol_version(http_request))
        if runner is None:
            runner = self._runner(_protocol_version(http_request))
        dispatch = _InProcessDispatch(next(self._ids), ServerMessageMetadata(request_context=http_request))
        try:
            return await runner.on_request(dispatch, method, params)  # type: ignore[arg-type]
        except Exception as exc:
            raise rpc_error(exc) from None

    def _runner(self, version: str) -> ServerRunner[Any]:
        """The SDK's request kernel over a connection born initialized at ``version``: the
        gateway's HTTP exchanges are stateless, so one connection per protocol version serves
        them all (an ``initialize`` through it negotiates that same version)."""
        connection = Connection.from_envelope(version, None, None)
        self._stack.push_async_callback(aclose_shielded, connection)  # type: ignore[union-attr]
        runner = self._runners[version] = ServerRunner(self._lowlevel, connection, self._lifespan_state)
        return runner

    async def handle_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._session_manager.handle_request(scope, receive, send)

    async def _bound(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Server middleware: the concurrency limit and the timeout for every request, and the
        record of every ``tools/call``."""
        if ctx.method != "tools/call":
            return await self._limited(ctx, call_next)
        params = ctx.params or {}
        tool = params.get("name") if isinstance(params.get("name"), str) else ""
        arguments = params.get("arguments") if isinstance(params.get("arguments"), dict) else {}
        started = time.perf_counter()
        result: HandlerResult = None
        error: str | None = None
        try:
            result = await self._limited(ctx, call_next)
        except BaseException as exc:
            error = rpc_error(exc).message if isinstance(exc, Exception) else "cancelled"
            raise
        finally:
            answer = result if isinstance(result, dict) else None
            await self.observe(
                self.name,
                McpCaller.of(ctx.request),
                tool,
                arguments,
                answer,
                error,
                time.perf_counter() - started,
            )
        return result

    async def _limited(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        try:
            async with asyncio.timeout(self.limits.timeout_seconds), self._slots:
                return await call_next(ctx)
        except TimeoutError:
            raise MCPError(
                REQUEST_TIMEOUT, f"{ctx.method} timed out after {self.limits.timeout_seconds:g} s"
            ) from None


def _protocol_version(http_request: Any) -> str:
    """The protocol version the client asked for (``MCP-Protocol-Version``), if it is one the
    handshake negotiates; otherwise the latest."""
    headers = getattr(http_request, "headers", None)
    asked = headers.get("mcp-protocol-version") if headers is not None else None
    return asked if asked in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION


class FailedServer:
    """A registered server that could not be built or started: listed with the reason, which
    calls to it are answered with (the gateway refuses them before they get here)."""

    restarts = 0

    def __init__(self, name: str, plugin: str, transport: Transport, reason: str) -> None:
        self.name = name
        self.plugin = plugin
        self.transport = transport
        self.status: Status = "failed"
        self.tools: list[str] = []
        self.last_error: str | None = reason

    async def start(self, stack: AsyncExitStack) -> None:
        return None

    async def request(self, method: str, params: dict[str, Any] | None, http_request: Any) -> dict[str, Any]:
        raise RpcError(INTERNAL_ERROR, self.last_error or "the server failed to start")


# -- external servers ---------------------------------------------------------------------------


class _WatchedDispatcher:
    """The SDK's JSON-RPC dispatcher, with an event set when its receive loop ends (the
    subprocess exited, the stream broke), so the supervisor reconnects at once."""

    def __init__(self, inner: JSONRPCDispatcher[Any]) -> None:
        self.inner = inner
        self.closed = anyio.Event()

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: Any = None
    ) -> dict[str, Any]:
        return await self.inner.send_raw_request(method, params, opts)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        await self.inner.notify(method, params, opts)

    async def run(self, *args: Any, **kwargs: Any) -> None:
        try:
            await self.inner.run(*args, **kwargs)
        finally:
            self.closed.set()


class ExternalServer:
    """An MCP server in another process, kept connected by a supervisor task: it connects and
    initializes, pings while connected, and after a failure (the process died, the stream
    broke, a ping went unanswered) reconnects with a doubling back-off. A stdio server's stderr
    goes to the debug log (scrubbed), never into an answer."""

    def __init__(
        self,
        name: str,
        plugin: str,
        spec: ExternalMcpServer,
        limits: Limits,
        observe: CallObserver,
        *,
        connect_timeout: float,
        ping_interval: float,
        backoff: float,
        backoff_max: float,
    ) -> None:
        self.name = name
        self.plugin = plugin
        self.spec = spec
        self.transport = spec.transport
        self.limits = limits
        self.observe = observe
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.status: Status = "connecting"
        self.tools: list[str] = []
        self.restarts = 0
        self.last_error: str | None = None
        self.initialize_result: dict[str, Any] = {}
        self._dispatcher: _WatchedDispatcher | None = None
        self._connected = asyncio.Event()
        self._slots = asyncio.Semaphore(limits.max_concurrency)
        self._task: asyncio.Task[None] | None = None

    async def start(self, stack: AsyncExitStack) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name=f"mcp:{self.name}")
        stack.push_async_callback(self._stop)

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.status = "stopped"

    # -- calls ---------------------------------------------------------------------------------

    async def request(self, method: str, params: dict[str, Any] | None, http_request: Any) -> dict[str, Any]:
        if method != "tools/call":
            return await self._send(method, params)
        params = params or {}
        started = time.perf_counter()
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            result = await self._send(method, params)
            return result
        except RpcError as exc:
            error = exc.message
            raise
        finally:
            await self.observe(
                self.name,
                McpCaller.of(http_request),
                params.get("name", ""),
                params.get("arguments") if isinstance(params.get("arguments"), dict) else {},
                result,
                error,
                time.perf_counter() - started,
            )

    async def _send(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        deadline = time.monotonic() + self.limits.timeout_seconds
        try:
            async with asyncio.timeout(self.limits.timeout_seconds):
                await self._connected.wait()
                if method == "initialize":
                    return dict(self.initialize_result)
                async with self._slots:
                    dispatcher = self._dispatcher
                    if dispatcher is None:
                        raise RpcError(CONNECTION_CLOSED, f"MCP server {self.name!r} is not connected")
                    remaining = max(deadline - time.monotonic(), 0.001)
                    return await dispatcher.send_raw_request(method, params, {"timeout": remaining})
        except TimeoutError:
            if not self._connected.is_set():
                raise RpcError(
                    CONNECTION_CLOSED, f"MCP server {self.name!r} is not connected (it is {self.status})"
                ) from None
            raise RpcError(
                REQUEST_TIMEOUT, f"{method} timed out after {self.limits.timeout_seconds:g} s"
            ) from None
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED and self._dispatcher is not None:
                self._dispatcher.closed.set()
            raise rpc_error(exc) from None

    # -- the connection ------------------------------------------------------------------------

    async def _supervise(self) -> None:
        delay = self.backoff
        while True:
            try:
                async with self._connection() as dispatcher:
                    delay = self.backoff
                    self.status, self.last_error = "ready", None
                    self._connected.set()
                    await self._watch(dispatcher)
                    self.last_error = "the connection closed"
            except BaseException as exc:  # a failed start or a broken stream: reconnect
                task = asyncio.current_task()
                if isinstance(exc, asyncio.CancelledError) or (task is not None and task.cancelling()):
                    raise
                self.last_error = failure_reason(exc)
            finally:
                self._connected.clear()
                self._dispatcher = None
            log.warning(
                "MCP server %r disconnected (%s); reconnecting in %.1f s", self.name, self.last_error, delay
            )
            self.status = "reconnecting"
            self.restarts += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[_WatchedDispatcher]:
        # No cancel scope around the set-up: the transports open task groups that must close
        # in the order they opened; the handshake's own requests carry the timeout instead.
        async with AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._streams(stack))
            dispatcher = _WatchedDispatcher(JSONRPCDispatcher(read, write))
            session = ClientSession(dispatcher=dispatcher, read_timeout_seconds=self.connect_timeout)  # type: ignore[arg-type]
            await stack.enter_async_context(session)
            initialized = await session.initialize()
            self.initialize_result = initialized.model_dump(by_alias=True, mode="json", exclude_none=True)
            listed = await dispatcher.send_raw_request("tools/list", None, {"timeout": self.connect_timeout})
            self.tools = [tool.get("name", "") for tool in listed.get("tools", [])]
            self._dispatcher = dispatcher
            yield dispatcher

    def _streams(self, stack: AsyncExitStack) -> contextlib.AbstractAsyncContextManager[Any]:
        spec = self.spec
        if spec.command is not None:
            errlog = _StderrToLog(self.name)
            stack.push_async_callback(errlog.aclose)
            parameters = StdioServerParameters(
                command=spec.command, args=list(spec.args), env=dict(spec.env) or None, cwd=spec.cwd
            )
            return stdio_client(parameters, errlog=errlog.writer)  # type: ignore[arg-type]
        client = create_mcp_http_client(headers=dict(spec.headers) or None)
        stack.push_async_callback(client.aclose)
        return streamable_http_client(spec.url or "", http_client=client)

    async def _watch(self, dispatcher: _WatchedDispatcher) -> None:
        """Return when the connection is gone: its receive loop ended, or a ping failed."""
        while True:
            with anyio.move_on_after(self.ping_interval):
                await dispatcher.closed.wait()
                return
            try:
                await dispatcher.send_raw_request("ping", None, {"timeout": self.limits.timeout_seconds})
            except MCPError:
                return


class _StderrToLog:
    """A pipe for a subprocess's stderr whose lines go to our debug log, scrubbed and cut."""

    def __init__(self, name: str) -> None:
        self.name = name
        read_fd, write_fd = os.pipe()
        self.writer = os.fdopen(write_fd, "w")
        self._reader = os.fdopen(read_fd, "rb", buffering=0)
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), self._reader
        )
        try:
            while line := await reader.readline():
                if log.isEnabledFor(logging.DEBUG):
                    text = line.decode("utf-8", "replace").rstrip()[:STDERR_LINE_LIMIT]
                    log.debug("MCP server %r stderr: %s", self.name, scrub(text))
        finally:
            transport.close()

    async def aclose(self) -> None:
        # The subprocess holds its own copy of the write end; ours closes now, so the pump ends
        # when the process does.
        with contextlib.suppress(OSError):
            self.writer.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._task, 2.0)


def failure_reason(exc: BaseException) -> str:
    """A one-line reason for the server listing (no stack, paths scrubbed, no stderr)."""
    if isinstance(exc, BaseExceptionGroup):
        return failure_reason(exc.exceptions[0]) if exc.exceptions else "failed"
    if isinstance(exc, TimeoutError):
        return "timed out while connecting"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"  # without the file name
    return scrub(f"{type(exc).__name__}: {exc}")[:300]
