"""What a plugin may register through ``register_mcp_servers``: an SDK server object, a factory,
an external server description; anything else stops start-up naming the plugin. A server that
fails to build or start is listed as failed, and calls to it answer 503 with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from external_server import stdio_settings
from mcp.server.mcpserver import Context, MCPServer

from mnemogate.core.contracts import ExternalMcpServer, McpCaller
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.core.testing import running


def weather_server() -> MCPServer:
    server = MCPServer("weather")

    @server.tool()
    def forecast(city: str, ctx: Context) -> str:
        """Tell the weather, and who asked."""
        caller = McpCaller.of(ctx.request_context.request)
        return f"sunny in {city} for {caller.tenant}"

    return server


class WeatherPlugin:
    plugin_name = "weather"

    def __init__(self, server: Any) -> None:
        self.server = server

    @hookimpl
    def register_mcp_servers(self, register: Any, registry: Registry) -> None:
        register("weather", self.server)
        spec = stdio_settings()
        register("weather-ext", ExternalMcpServer(command=spec["command"], args=tuple(spec["args"])))


async def test_an_sdk_server_object_survives_restarts(make_app: Any, mcp_call: Any) -> None:
    app = make_app(plugins=[WeatherPlugin(weather_server())])
    for start in (1, 2):
        async with running(app) as client:
            result = await mcp_call(client, "weather", "forecast", {"city": "Oslo"})
            assert result["content"][0]["text"] == "sunny in Oslo for default"
            echoed = await mcp_call(client, "weather-ext", "echo", {"text": "hi"})
            assert echoed["content"][0]["text"] == "hi"
            calls = (await client.get("/api/mcp-gateway/calls", params={"server": "weather"})).json()["items"]
            assert len(calls) == start  # one record per call, not one per start


async def test_a_factory_gets_the_registry(make_app: Any, mcp_call: Any) -> None:
    seen: list[Registry] = []

    def factory(registry: Registry) -> MCPServer:
        seen.append(registry)
        return weather_server()

    app = make_app(plugins=[WeatherPlugin(factory)])
    async with running(app) as client:
        assert (await mcp_call(client, "weather", "forecast", {"city": "Rome"}))["isError"] is False
    assert seen == [app.state.registry]


async def test_anything_else_stops_start_up_naming_the_plugin(make_app: Any) -> None:
    app = make_app(plugins=[WeatherPlugin(object())])
    with pytest.raises(Exception, match="weather"):
        async with running(app):
            pass
    assert "plugin 'weather' registered MCP server 'weather'" in (app.state.registry.startup_error or "")


async def test_a_server_that_fails_to_build_is_reported_and_the_rest_work(
    make_app: Any, mcp_call: Any
) -> None:
    def broken(registry: Registry) -> MCPServer:
        raise RuntimeError("no forecast service configured")

    app = make_app(plugins=[WeatherPlugin(broken)])
    async with running(app) as client:
        response = await client.post(
            "/api/mcp-gateway/weather/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
        )
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "mcp_server_unavailable"
        assert "plugin 'weather': MCP server 'weather' failed to build" in error["message"]
        assert "no forecast service configured" in error["message"]
        servers = {s["name"]: s for s in (await client.get("/api/mcp-gateway/servers")).json()["items"]}
        assert servers["weather"]["status"] == "failed"
        assert "no forecast service configured" in servers["weather"]["last_error"]
        echoed = await mcp_call(client, "weather-ext", "echo", {"text": "still here"})
        assert echoed["content"][0]["text"] == "still here"
        assert servers["pruner"]["status"] == "ready"


async def test_a_factory_returning_something_else_is_reported(make_app: Any) -> None:
    app = make_app(plugins=[WeatherPlugin(lambda registry: "not a server")])
    async with running(app) as client:
        response = await client.post(
            "/api/mcp-gateway/weather/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
        )
        assert response.status_code == 503
        message = response.json()["error"]["message"]
        assert "plugin 'weather': the factory of MCP server 'weather' returned a str" in message
