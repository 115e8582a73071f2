"""The built-in servers' own streamable-HTTP endpoints (/mcp/servers/{name}), used with the mcp
SDK's client over a real server, as MCP clients do."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from external_server import stdio_settings
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from mnemogate.core.testing import served


@contextlib.asynccontextmanager
async def mcp_client(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_the_sdk_client_uses_a_builtin_server_directly(make_app: Any) -> None:
    async with served(make_app()) as base:
        async with mcp_client(f"{base}/mcp/servers/json-query", {"X-Session-ID": "direct"}) as session:
            assert session.server_info is not None and session.server_info.name == "json-query"
            tools = await session.list_tools()
            assert {t.name for t in tools.tools} == {"query_json", "infer_schema", "stream_query"}
            result = await session.call_tool("query_json", {"expression": "length(@)", "data": [1, 2, 3]})
            assert result.is_error is False and result.structured_content == {
                "language": "jmespath",
                "result": 3,
            }
        async with mcp_client(f"{base}/mcp/servers/fast-filesystem/") as session:
            resource = await session.read_resource("fs://roots")
            assert '"read_only": false' in resource.contents[0].text  # type: ignore[union-attr]
        async with httpx.AsyncClient(base_url=base) as client:
            calls = (await client.get("/api/mcp-gateway/calls")).json()["items"]
    assert [(c["server"], c["tool"], c["outcome"]) for c in calls] == [("json-query", "query_json", "ok")]
    assert calls[0]["session_id"]  # X-Session-ID put the direct call in a session too


async def test_the_same_thought_history_through_both_doors(make_app: Any, mcp_call: Any) -> None:
    thought = {"thought": "t", "nextThoughtNeeded": True, "thoughtNumber": 1, "totalThoughts": 2}
    headers = {"X-Session-ID": "both-doors"}
    async with served(make_app()) as base, httpx.AsyncClient(base_url=base) as client:
        first = await mcp_call(client, "sequential-thinking", "sequentialthinking", thought, headers=headers)
        async with mcp_client(f"{base}/mcp/servers/sequential-thinking", headers) as session:
            second = await session.call_tool("sequentialthinking", {**thought, "thoughtNumber": 2})
    assert first["structuredContent"]["thoughtHistoryLength"] == 1
    assert second.structured_content is not None and second.structured_content["thoughtHistoryLength"] == 2


async def test_direct_endpoints_need_a_write_key_and_a_builtin_name(
    make_app: Any, create_key: Any, app_with: Any
) -> None:
    app = make_app()
    async with served(app) as base, httpx.AsyncClient(base_url=base) as client:
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        accept = {"Accept": "application/json, text/event-stream"}
        missing = await client.post("/mcp/servers/nope", json=initialize, headers=accept)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "mcp_server_not_found"
        nested = await client.post("/mcp/servers/json-query/extra", json=initialize, headers=accept)
        assert nested.status_code == 404

        reader = await create_key(app, scopes=("read",))
        anonymous = await client.post("/mcp/servers/json-query", json=initialize, headers=accept)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
        read_only = await client.post(
            "/mcp/servers/json-query",
            json=initialize,
            headers={**accept, "Authorization": f"Bearer {reader}"},
        )
        assert read_only.status_code == 403
        writer = await create_key(app, scopes=("write",))
    async with (
        served(app) as base,
        mcp_client(f"{base}/mcp/servers/pruner", {"X-API-Key": writer}) as session,
    ):
        assert [t.name for t in (await session.list_tools()).tools] == ["prune_messages"]


async def test_an_external_server_has_no_direct_endpoint(app_with: Any) -> None:
    async with (
        served(app_with(mcp_gateway={"servers": [stdio_settings()]})) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        response = await client.post("/mcp/servers/ext", json={}, headers={"Accept": "application/json"})
    assert response.status_code == 404


async def test_the_sdk_client_works_against_the_rpc_endpoint_too(app_with: Any) -> None:
    """/rpc answers plain JSON and 202 for notifications, which the SDK's streamable-HTTP client
    accepts: MCP clients can use the gateway's endpoint for external servers as well."""
    async with served(app_with(mcp_gateway={"servers": [stdio_settings()]})) as base:
        async with mcp_client(f"{base}/api/mcp-gateway/ext/rpc") as session:
            assert session.server_info is not None and session.server_info.name == "external-test-server"
            result = await session.call_tool("add", {"a": 20, "b": 22})
            assert result.structured_content == {"result": 42}
            prompt = await session.get_prompt("greet", {"name": "Ada"})
            assert prompt.messages[0].content.text == "Say hello to Ada."  # type: ignore[union-attr]
        async with mcp_client(f"{base}/api/mcp-gateway/json-query/rpc") as session:
            result = await session.call_tool("query_json", {"expression": "a", "data": {"a": 5}})
            assert result.structured_content == {"language": "jmespath", "result": 5}
