"""``/mcp``: the ``memory`` server's streamable-HTTP endpoint, where MCP clients (Claude
Desktop, Cline, ...) are pointed. The MCP gateway runs the server (it is the same in-process
server as ``/mcp/servers/memory`` and ``/api/mcp-gateway/memory/rpc``: calls are bounded, logged
and handed to ``mcp_tool_called`` hooks alike); this route only opens a second door to it, at
exactly ``/mcp``, so ``/mcp/servers/...`` stays the gateway's."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send

from mnemogate.core.dependencies import check_scope, get_principal
from mnemogate.core.errors import AppError, Unavailable, send_error
from mnemogate.core.registry import registry_of
from mnemogate.plugins.mcp_memory_server import NAME

GATEWAY = "mcp_gateway"
SCOPE = "write"


class MemoryEndpoint:
    """A mounted route gets no route-pack dependencies, so the scope is checked here."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = HTTPConnection(scope)
        try:
            check_scope(get_principal(connection), SCOPE)
            gateway = registry_of(scope).services.get(GATEWAY)
            if gateway is None:
                raise Unavailable("the memory MCP server needs the mcp_gateway plugin (it is disabled)")
            upstream = await gateway.server(NAME)
            gateway.identify(connection)
        except AppError as exc:
            await send_error(scope, send, exc.status, exc.message, headers=exc.headers, code=exc.code)
            return
        await upstream.handle_http(scope, receive, send)


router = APIRouter()
router.add_route("/mcp", MemoryEndpoint(), methods=["GET", "POST", "DELETE"], include_in_schema=False)
