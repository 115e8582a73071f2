"""``/api/mcp-gateway``: JSON-RPC to a server, the server listing, the call log; and the direct
streamable-HTTP endpoints of the in-process servers under ``/mcp/servers/{name}``."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.requests import HTTPConnection
from starlette.routing import get_route_path
from starlette.types import Receive, Scope, Send

from mnemogate.core.dependencies import (
    PageCursor,
    PageLimit,
    PrincipalDep,
    RegistryDep,
    check_scope,
    get_principal,
)
from mnemogate.core.errors import AppError, NotFound, Unavailable, send_error
from mnemogate.core.pagination import Page
from mnemogate.core.registry import registry_of
from mnemogate.plugins.mcp_gateway.models import CallOut, ServerOut
from mnemogate.plugins.mcp_gateway.service import DIRECT_PREFIX, SERVICE, CallFilters, McpGateway

_ID = {"type": ["string", "number", "null"]}
_REQUEST = {
    "type": "object",
    "required": ["jsonrpc", "method"],
    "properties": {
        "jsonrpc": {"type": "string", "enum": ["2.0"]},
        "method": {"type": "string", "description": "initialize, ping, tools/list, tools/call, ..."},
        "id": _ID,
        "params": {"type": ["object", "array"]},
    },
}
_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "data": {}},
}
_RESPONSE = {
    "type": "object",
    "required": ["jsonrpc", "id"],
    "properties": {"jsonrpc": {"type": "string"}, "id": _ID, "result": {"type": "object"}, "error": _ERROR},
}
_RPC_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [_REQUEST, {"type": "array", "minItems": 1, "items": {}}],
                    "description": "a JSON-RPC 2.0 request, notification, or batch",
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "the JSON-RPC response (an array for a batch); errors of single calls are "
            "JSON-RPC error objects",
            "content": {
                "application/json": {"schema": {"anyOf": [_RESPONSE, {"type": "array", "items": _RESPONSE}]}}
            },
        },
        "202": {"description": "only notifications: nothing to answer"},
        "400": {
            "description": "the body is not JSON (-32700) or not a JSON-RPC request or batch (-32600)",
            "content": {"application/json": {"schema": _RESPONSE}},
        },
    },
}

rpc_router = APIRouter()
read_router = APIRouter()
direct_router = APIRouter()

ServerName = Annotated[str, Path(min_length=1, max_length=64, description="a name from /servers")]


@rpc_router.post(
    "/{server_name}/rpc",
    summary="JSON-RPC 2.0 to an MCP server (X-Session-ID picks the session)",
    openapi_extra=_RPC_OPENAPI,
    response_class=Response,
)
async def rpc(server_name: ServerName, request: Request, registry: RegistryDep) -> Response:
    gateway: McpGateway = registry.services[SERVICE]
    upstream = await gateway.server(server_name)
    caller = gateway.identify(request)
    reply = await gateway.rpc(upstream, await request.body(), request)
    headers = {"X-Session-ID": caller.session_id} if caller.session_id else None
    if reply.body is None:
        return Response(status_code=reply.status, headers=headers)
    return Response(
        orjson.dumps(reply.body), status_code=reply.status, media_type="application/json", headers=headers
    )


@read_router.get("/servers", summary="MCP servers: transport, status, tools")
async def servers(
    registry: RegistryDep, limit: PageLimit = 100, cursor: PageCursor = None
) -> Page[ServerOut]:
    gateway: McpGateway = registry.services[SERVICE]
    return await gateway.listing(limit, cursor)


@read_router.get("/calls", summary="The tool-call log, newest first")
async def calls(
    principal: PrincipalDep,
    registry: RegistryDep,
    session_id: Annotated[str | None, Query(max_length=200)] = None,
    server: Annotated[str | None, Query(max_length=64)] = None,
    tool: Annotated[str | None, Query(max_length=200)] = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Page[CallOut]:
    gateway: McpGateway = registry.services[SERVICE]
    return await gateway.log.list(principal.tenant, CallFilters(session_id, server, tool), limit, cursor)


class DirectEndpoints:
    """``/mcp/servers/{name}``: the streamable-HTTP endpoint of an in-process server, for MCP
    clients that talk to it without the JSON-RPC wrapper. A mount gets no route dependencies,
    so the pack's scope is checked here."""

    scope = "write"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        connection = HTTPConnection(scope)
        name = get_route_path(scope).strip("/")
        try:
            check_scope(get_principal(connection), self.scope)
            gateway: McpGateway | None = registry_of(scope).services.get(SERVICE)
            if gateway is None:
                raise Unavailable("the MCP gateway is not running")
            upstream = await gateway.server(name)
            if upstream.transport != "in-process":
                raise NotFound(
                    f"{name!r} is an external server: use its own endpoint", code="mcp_server_not_found"
                )
            gateway.identify(connection)
        except AppError as exc:
            await send_error(scope, send, exc.status, exc.message, headers=exc.headers, code=exc.code)
            return
        await upstream.handle_http(scope, receive, send)  # type: ignore[attr-defined]


direct_router.mount(DIRECT_PREFIX, DirectEndpoints(), name="mcp-servers")
