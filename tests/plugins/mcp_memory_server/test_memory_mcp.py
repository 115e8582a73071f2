"""The memory MCP server at /mcp, used with the mcp SDK's streamable-HTTP client over a real
server, as Claude Desktop or Cline would."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, served

TOOLS = {
    "add_memory",
    "search_memories",
    "list_memories",
    "get_memory",
    "update_memory",
    "delete_memory",
    "memory_history",
    "recall_episodes",
    "recall_skills",
}


@contextlib.asynccontextmanager
async def mcp_client(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    result = await session.call_tool(tool, arguments)
    assert result.is_error is False, result.content
    return result.structured_content


def app_for(mnemogate_settings: Any) -> Any:
    settings = mnemogate_settings.model_copy(
        update={"plugins": PluginsConfig(memory={"embedder": "hashing"})}
    )
    return build_app(settings)


async def test_memory_tools_over_mcp(mnemogate_settings: Any, create_key: Any) -> None:
    app = app_for(mnemogate_settings)
    async with served(app) as base:
        acme = {"Authorization": f"Bearer {await create_key(app, tenant='acme')}"}
        globex = {"X-API-Key": await create_key(app, tenant="globex")}
        async with httpx.AsyncClient(base_url=base, headers=acme) as http:
            episode = {
                "content": "Deployed the billing service; the migration took 4 minutes",
                "user_id": "alex",
            }
            assert (await http.post("/api/v1/episodes", json=episode)).status_code == 201
            skill = {
                "name": "deploy billing",
                "description": "deploy the billing service",
                "steps": ["migrate"],
            }
            assert (await http.post("/api/v1/skills", json=skill)).status_code == 201

        async with mcp_client(f"{base}/mcp", acme) as session:
            assert session.server_info is not None and session.server_info.name == "memory"
            assert {t.name for t in (await session.list_tools()).tools} == TOOLS

            added = await call(
                session, "add_memory", content="Alex prefers dark roast coffee.", user_id="alex"
            )
            assert [(r["memory"], r["event"]) for r in added["results"]] == [
                ("Alex prefers dark roast coffee.", "ADD")
            ]
            memory_id = added["results"][0]["id"]
            again = await call(
                session, "add_memory", content="Alex prefers dark roast coffee.", user_id="alex"
            )
            assert again["results"][0]["event"] == "NONE"

            found = await call(session, "search_memories", query="dark roast coffee", user_id="alex")
            assert found["results"][0]["id"] == memory_id and found["results"][0]["score"] > 0
            listed = await call(session, "list_memories", filters={"user_id": {"in": ["alex"]}})
            assert listed["count"] == 1
            updated = await call(
                session, "update_memory", memory_id=memory_id, text="Alex prefers green tea."
            )
            assert updated["memory"] == "Alex prefers green tea."
            assert (await call(session, "get_memory", memory_id=memory_id))[
                "memory"
            ] == "Alex prefers green tea."

            episodes = await call(session, "recall_episodes", query="billing migration", user_id="alex")
            assert "billing" in episodes["results"][0]["episode"]["content"]
            skills = await call(session, "recall_skills", task="deploy billing")
            assert skills["results"][0]["skill"]["name"] == "deploy billing"

            missing = await session.call_tool(
                "get_memory", {"memory_id": "00000000-0000-0000-0000-000000000000"}
            )
            assert missing.is_error is True
            assert (await call(session, "delete_memory", memory_id=memory_id))["id"] == memory_id
            history = await call(session, "memory_history", memory_id=memory_id)
            assert [h["event"] for h in history["results"]] == ["ADD", "UPDATE", "DELETE"]

        # The memories the MCP tools wrote are the Mem0 API's memories, for the same tenant only.
        async with mcp_client(f"{base}/mcp", acme) as session:
            await call(
                session, "add_memory", content="Alex has a cat named Miso.", user_id="alex", infer=False
            )
        async with httpx.AsyncClient(base_url=base) as http:
            mem0 = await http.get("/memories", params={"user_id": "alex"}, headers=acme)
            assert [m["memory"] for m in mem0.json()["results"]] == ["Alex has a cat named Miso."]
        async with mcp_client(f"{base}/mcp", globex) as session:
            assert (await call(session, "list_memories", user_id="alex"))["count"] == 0
            assert (await call(session, "search_memories", query="cat Miso"))["results"] == []
            assert (await call(session, "recall_episodes", query="billing"))["results"] == []


async def test_mcp_needs_a_write_key_and_leaves_the_gateway_paths_alone(
    mnemogate_settings: Any, create_key: Any
) -> None:
    app = app_for(mnemogate_settings)
    async with served(app) as base, httpx.AsyncClient(base_url=base) as http:
        reader = await create_key(app, scopes=("read",))
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
        anonymous = await http.post("/mcp", json=initialize, headers=accept)
        assert anonymous.status_code == 401
        read_only = await http.post("/mcp", json=initialize, headers={**accept, "X-API-Key": reader})
        assert read_only.status_code == 403
        writer = {"X-API-Key": await create_key(app, scopes=("write",))}
        async with mcp_client(f"{base}/mcp/servers/json-query", writer) as session:
            assert session.server_info is not None and session.server_info.name == "json-query"
        async with mcp_client(f"{base}/mcp/servers/memory", writer) as session:
            assert session.server_info is not None and session.server_info.name == "memory"
        servers = (await http.get("/api/mcp-gateway/servers", headers=writer)).json()["items"]
        assert "memory" in {s["name"] for s in servers}
