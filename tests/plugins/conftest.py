from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mnemogate.core.contracts import ChatContext, ModelInfo
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
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


# -- a recording LLM provider ---------------------------------------------------------------------


class RecordingProvider:
    """Provider ``rec`` (model ``model``): keeps every request body exactly as it would leave for
    the upstream and answers with the next scripted reply (``replies``), else "noted"."""

    name = "rec"
    kind = "recording"

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.replies: list[str] = []

    async def models(self) -> list[ModelInfo]:
        return [ModelInfo("model", self.name, 100_000, 0.0, 0.0)]

    def _reply(self, ctx: ChatContext) -> str:
        self.bodies.append(copy.deepcopy(ctx.body))
        return self.replies.pop(0) if self.replies else "noted"

    async def complete(self, ctx: ChatContext) -> dict[str, Any]:
        reply = self._reply(ctx)
        return {
            "id": "chatcmpl-rec",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": ctx.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }

    async def stream(self, ctx: ChatContext) -> AsyncIterator[bytes]:
        import orjson

        reply = self._reply(ctx)
        for word in reply.split(" "):
            chunk = {
                "id": "chatcmpl-rec",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": ctx.model,
                "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}],
            }
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield b"data: [DONE]\n\n"


class RecordingPlugin:
    plugin_name = "recording_provider"

    def __init__(self) -> None:
        self.provider = RecordingProvider()

    @hookimpl
    def register_providers(self, register: Any, registry: Registry) -> None:
        register(self.provider.name, self.provider)


@pytest.fixture
def recorder() -> RecordingPlugin:
    """A plugin registering the recording provider ``rec``: pass it to the app's plugins."""
    return RecordingPlugin()


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
