from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app
from mnemogate.plugins.auth.models import KeyCreate

KeyMaker = Callable[..., Awaitable[str]]


async def _create_key(app: FastAPI, tenant: str = "default", scopes: tuple[str, ...] = ("write",)) -> str:
    keys = app.state.registry.services["auth.keys"]
    return (await keys.create(KeyCreate(name="test", scopes=list(scopes), tenant=tenant))).key  # type: ignore[arg-type]


@pytest.fixture
def create_key() -> KeyMaker:
    """``await create_key(app, tenant="acme", scopes=("write",))``: an API key of a running app."""
    return _create_key


# -- MCP gateway ---------------------------------------------------------------------------------

McpRpc = Callable[..., Awaitable[Any]]


async def _mcp_rpc(client: httpx.AsyncClient, server: str, method: str, params: Any = None, **kw: Any) -> Any:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        body["params"] = params
    response = await client.post(f"/api/mcp-gateway/{server}/rpc", json=body, **kw)
    assert response.status_code == 200, response.text
    return response.json()


async def _mcp_call(
    client: httpx.AsyncClient, server: str, tool: str, arguments: dict[str, Any], **kw: Any
) -> Any:
    reply = await _mcp_rpc(client, server, "tools/call", {"name": tool, "arguments": arguments}, **kw)
    assert "result" in reply, reply
    return reply["result"]


@pytest.fixture
def mcp_rpc() -> McpRpc:
    """``await mcp_rpc(client, "json-query", "tools/list", params)``: one JSON-RPC request through
    the MCP gateway; answers the JSON-RPC response object."""
    return _mcp_rpc


@pytest.fixture
def mcp_call() -> McpRpc:
    """``await mcp_call(client, server, tool, arguments)``: a ``tools/call`` through the MCP
    gateway; answers the tool result."""
    return _mcp_call


@pytest.fixture
def app_with(mnemogate_settings: Any) -> Callable[..., FastAPI]:
    """``app_with(mcp_gateway={...}, plugins=[...], disabled=[...])``: an isolated app with the
    given plugin settings (each keyword a plugin's settings table)."""

    def make(
        *, plugins: Iterable[object] = (), disabled: Iterable[str] = (), **tables: dict[str, Any]
    ) -> FastAPI:
        settings = mnemogate_settings.model_copy(update={"plugins": PluginsConfig.model_validate(tables)})
        return build_app(settings, plugins=plugins, disabled=disabled)

    return make
