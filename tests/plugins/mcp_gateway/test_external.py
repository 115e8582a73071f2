"""External MCP servers: a stdio subprocess and a streamable-HTTP server (both real servers built
on the mcp SDK), proxied through the gateway; kept connected, restarted after a crash, bounded by
timeouts and concurrency limits, their stderr never in an answer."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import orjson
from external_server import STDERR_MARKER, http_app, stdio_settings

from mnemogate.core.testing import running, served

INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}


async def until(check: Any) -> Any:
    """Poll ``check`` (the server listing, as a client would) until it answers something."""
    async with asyncio.timeout(20):
        for _ in itertools.count():
            if value := await check():
                return value
            await asyncio.sleep(0.05)


async def server_status(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    servers = (await client.get("/api/mcp-gateway/servers")).json()["items"]
    return next(s for s in servers if s["name"] == name)


async def ready(client: httpx.AsyncClient, name: str = "ext") -> dict[str, Any]:
    async def check() -> Any:
        status = await server_status(client, name)
        return status if status["status"] == "ready" else None

    return await until(check)


async def test_a_stdio_server_through_the_gateway(app_with: Any, mcp_rpc: Any, mcp_call: Any) -> None:
    async with running(app_with(mcp_gateway={"servers": [stdio_settings()]})) as client:
        status = await ready(client)
        assert status["transport"] == "stdio" and status["plugin"] == "mcp_gateway"
        assert {"echo", "add", "sleep", "crash"} <= set(status["tools"]) and status["endpoint"] is None

        init = (await mcp_rpc(client, "ext", "initialize", INIT))["result"]
        assert init["serverInfo"] == {"name": "external-test-server", "version": "1.2.3"}
        assert init["instructions"] == "test server"
        assert (await mcp_rpc(client, "ext", "ping"))["result"] == {}
        assert (await mcp_call(client, "ext", "add", {"a": 2, "b": 40}))["structuredContent"] == {
            "result": 42
        }
        failed = await mcp_call(client, "ext", "fail", {})
        assert failed["isError"] is True and "always fails" in failed["content"][0]["text"]

        resources = (await mcp_rpc(client, "ext", "resources/list"))["result"]["resources"]
        assert resources[0]["uri"] == "test://greeting"
        read = await mcp_rpc(client, "ext", "resources/read", {"uri": "test://greeting"})
        assert read["result"]["contents"][0]["text"] == "hello from the external server"
        prompt = await mcp_rpc(client, "ext", "prompts/get", {"name": "greet", "arguments": {"name": "Ada"}})
        assert prompt["result"]["messages"][0]["content"]["text"] == "Say hello to Ada."
        assert (await mcp_rpc(client, "ext", "prompts/list"))["result"]["prompts"][0]["name"] == "greet"
        assert (await mcp_rpc(client, "ext", "tools/bogus"))["error"]["code"] == -32601

        calls = (await client.get("/api/mcp-gateway/calls", params={"server": "ext"})).json()["items"]
        assert [(c["tool"], c["outcome"]) for c in calls] == [("fail", "tool_error"), ("add", "ok")]


async def test_stderr_never_reaches_a_client(app_with: Any, mcp_rpc: Any) -> None:
    async with running(app_with(mcp_gateway={"servers": [stdio_settings()]})) as client:
        await ready(client)
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "noisy", "arguments": {}},
        }
        response = await client.post("/api/mcp-gateway/ext/rpc", json=body)
        assert response.json()["result"]["content"][0]["text"] == "quiet answer"
        pages = [
            response.text,
            (await client.get("/api/mcp-gateway/servers")).text,
            (await client.get("/api/mcp-gateway/calls")).text,
        ]
        assert all(STDERR_MARKER not in page and "sk-xxxx" not in page for page in pages)


async def test_a_crashed_server_is_restarted(app_with: Any, mcp_call: Any, mcp_rpc: Any) -> None:
    settings = {"servers": [stdio_settings()], "restart_backoff_seconds": 0.1}
    async with running(app_with(mcp_gateway=settings)) as client:
        await ready(client)
        first = (await mcp_call(client, "ext", "pid", {}))["structuredContent"]["result"]
        crashed = await mcp_rpc(client, "ext", "tools/call", {"name": "crash", "arguments": {}})
        assert crashed["error"]["code"] == -32000  # the connection closed under the call

        async def restarted() -> Any:
            status = await server_status(client, "ext")
            return status if status["restarts"] == 1 and status["status"] == "ready" else None

        status = await until(restarted)
        assert status["last_error"] is None
        second = (await mcp_call(client, "ext", "pid", {}))["structuredContent"]["result"]
        assert second != first
        calls = (await client.get("/api/mcp-gateway/calls", params={"tool": "crash"})).json()["items"]
        assert calls[0]["outcome"] == "error"


async def test_a_server_that_cannot_start_is_retried_and_reported(app_with: Any, mcp_rpc: Any) -> None:
    broken = {"name": "broken", "command": "/nonexistent/mcp-server"}
    settings = {"servers": [broken], "restart_backoff_seconds": 0.05, "timeout_seconds": 0.5}
    async with running(app_with(mcp_gateway=settings)) as client:

        async def retried() -> Any:
            status = await server_status(client, "broken")
            return status if status["restarts"] >= 2 else None

        status = await until(retried)
        assert (
            status["status"] in ("reconnecting", "connecting") and "FileNotFoundError" in status["last_error"]
        )
        assert "/nonexistent" not in status["last_error"]
        reply = await mcp_rpc(client, "broken", "tools/list")
        assert reply["error"]["code"] == -32000 and "not connected" in reply["error"]["message"]


async def test_timeouts_and_concurrency_limits(app_with: Any, mcp_call: Any, mcp_rpc: Any) -> None:
    server = stdio_settings(timeout_seconds=0.5, max_concurrency=1)
    async with running(app_with(mcp_gateway={"servers": [server]})) as client:
        await ready(client)
        started = time.monotonic()
        slow = await mcp_rpc(client, "ext", "tools/call", {"name": "sleep", "arguments": {"seconds": 5}})
        assert slow["error"]["code"] == -32001 and time.monotonic() - started < 3

        # One slot: a call waiting behind a busy one counts its wait against its own timeout.
        busy = asyncio.create_task(mcp_call(client, "ext", "sleep", {"seconds": 0.4}))
        await asyncio.sleep(0.1)
        queued = await mcp_rpc(client, "ext", "tools/call", {"name": "sleep", "arguments": {"seconds": 0.3}})
        assert queued["error"]["code"] == -32001
        assert (await busy)["content"][0]["text"] == "slept 0.4"
        assert (await mcp_call(client, "ext", "echo", {"text": "still fine"}))["content"][0][
            "text"
        ] == "still fine"


async def test_builtin_servers_are_bounded_too(app_with: Any, mcp_rpc: Any, tmp_path: Any) -> None:
    big = tmp_path / "big"
    big.mkdir()
    for i in range(3000):
        (big / f"f{i}.txt").write_text("needle " * 50)
    tables = {"mcp_gateway": {"timeout_seconds": 0.05}, "mcp_fast_filesystem": {"roots": [str(big)]}}
    async with running(app_with(**tables)) as client:
        reply = await mcp_rpc(
            client,
            "fast-filesystem",
            "tools/call",
            {"name": "search_content", "arguments": {"path": ".", "query": "x"}},
        )
        assert reply["error"]["code"] == -32001 and "timed out" in reply["error"]["message"]


async def test_a_streamable_http_server_through_the_gateway(
    app_with: Any, mcp_call: Any, mcp_rpc: Any
) -> None:
    async with served(http_app()) as upstream:
        remote = {"name": "remote", "url": f"{upstream}/mcp", "headers": {"X-Test": "1"}}
        async with running(app_with(mcp_gateway={"servers": [remote]})) as client:
            status = await ready(client, "remote")
            assert status["transport"] == "streamable-http" and "echo" in status["tools"]
            echoed = await mcp_call(client, "remote", "echo", {"text": "over http"})
            assert echoed["content"][0]["text"] == "over http"
            batch = [
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": "add", "arguments": {"a": 1, "b": 1}},
                },
                {"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "test://greeting"}},
            ]
            replies = (await client.post("/api/mcp-gateway/remote/rpc", json=batch)).json()
            assert replies[0]["result"]["structuredContent"] == {"result": 2}
            assert replies[1]["result"]["contents"][0]["text"].startswith("hello")


async def test_external_servers_are_configured_from_the_environment(monkeypatch: Any, make_app: Any) -> None:
    monkeypatch.setenv(
        "MNEMOGATE_PLUGINS__MCP_GATEWAY__SERVERS", orjson.dumps([stdio_settings("env-ext")]).decode()
    )
    from mnemogate.core.settings import load_settings
    from mnemogate.core.testing import build_app

    settings = load_settings(data_dir=make_app().state.registry.settings.data_dir, load_plugins=[])
    async with running(build_app(settings)) as client:
        assert (await ready(client, "env-ext"))["transport"] == "stdio"
