"""Every tool call is logged per session, counted in metrics, published on /ws and handed to the
``mcp_tool_called`` hooks; each tenant sees only its own calls; scopes apply."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from mnemogate.core.contracts import McpToolCall
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.testing import running, served


class ToolCallRecorder:
    """A plugin implementing the gateway's hook, as the memory plugins do."""

    plugin_name = "tool_call_recorder"

    def __init__(self) -> None:
        self.calls: list[McpToolCall] = []
        self.seen = asyncio.Event()

    @hookimpl
    async def mcp_tool_called(self, call: McpToolCall) -> None:
        self.calls.append(call)
        self.seen.set()


async def test_calls_are_logged_per_session(client: Any, mcp_call: Any) -> None:
    session = str(uuid.uuid4())
    headers = {"X-Session-ID": session}
    await mcp_call(client, "json-query", "query_json", {"expression": "a", "data": {"a": 1}}, headers=headers)
    await mcp_call(client, "json-query", "query_json", {"expression": "a[", "data": {}}, headers=headers)
    await mcp_call(client, "json-query", "query_json", {"data": {}}, headers=headers)
    await mcp_call(client, "pruner", "nope", {})

    response = await client.get("/api/mcp-gateway/calls", params={"session_id": session})
    assert response.status_code == 200
    calls = response.json()["items"]
    assert [c["outcome"] for c in calls] == ["tool_error", "tool_error", "ok"]
    ok = calls[-1]
    assert ok["server"] == "json-query" and ok["tool"] == "query_json" and ok["session_id"] == session
    assert ok["arguments"] == {"expression": "a", "data": {"a": 1}} and ok["error"] is None
    assert ok["latency_ms"] > 0 and ok["request_id"] and ok["created_at"].endswith("Z")
    assert "invalid JMESPath" in calls[1]["error"]

    everything = (await client.get("/api/mcp-gateway/calls")).json()["items"]
    assert len(everything) == 4 and everything[0]["server"] == "pruner"
    by_tool = (await client.get("/api/mcp-gateway/calls", params={"tool": "nope"})).json()["items"]
    assert [c["outcome"] for c in by_tool] == ["tool_error"]
    page = (await client.get("/api/mcp-gateway/calls", params={"limit": 3})).json()
    rest = (await client.get("/api/mcp-gateway/calls", params={"cursor": page["next_cursor"]})).json()
    assert [c["id"] for c in page["items"] + rest["items"]] == [c["id"] for c in everything]


async def test_a_named_session_is_the_one_chat_requests_use(client: Any, mcp_call: Any) -> None:
    headers = {"X-Session-ID": "my agent run"}
    chat = await client.post(
        "/v1/chat/completions",
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )
    reply = await client.post(
        "/api/mcp-gateway/pruner/rpc",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers=headers,
    )
    assert reply.headers["x-session-id"] == chat.headers["x-session-id"]
    await mcp_call(client, "json-query", "infer_schema", {"data": {}}, headers=headers)
    calls = (await client.get("/api/mcp-gateway/calls")).json()["items"]
    assert calls[0]["session_id"] == chat.headers["x-session-id"]


async def test_calls_without_a_session_header_join_the_active_session(client: Any, mcp_call: Any) -> None:
    created = await client.post("/api/sessions", json={"name": "work", "activate": True})
    await mcp_call(client, "json-query", "infer_schema", {"data": 1})
    calls = (await client.get("/api/mcp-gateway/calls")).json()["items"]
    assert calls[0]["session_id"] == created.json()["id"]


async def test_metrics_count_calls(client: Any, mcp_call: Any) -> None:
    await mcp_call(client, "json-query", "infer_schema", {"data": 1})
    await mcp_call(client, "json-query", "made_up_tool", {})
    metrics = (await client.get("/metrics")).text
    assert (
        'mnemogate_mcp_tool_calls_total{outcome="ok",server="json-query",tool="infer_schema"} 1.0' in metrics
    )
    assert (
        'mnemogate_mcp_tool_calls_total{outcome="tool_error",server="json-query",tool="<unknown>"} 1.0'
        in metrics
    )
    assert 'mnemogate_mcp_tool_call_seconds_count{server="json-query"} 2.0' in metrics


async def test_hooks_get_every_call_off_the_request_path(make_app: Any, mcp_call: Any) -> None:
    recorder = ToolCallRecorder()
    async with running(make_app(plugins=[recorder])) as client:
        await mcp_call(
            client,
            "json-query",
            "query_json",
            {"expression": "x", "data": {"x": 2}},
            headers={"X-Session-ID": "s1"},
        )
        await asyncio.wait_for(recorder.seen.wait(), 5)
    (call,) = recorder.calls
    assert (call.server, call.tool, call.outcome, call.tenant) == (
        "json-query",
        "query_json",
        "ok",
        "default",
    )
    assert call.arguments == {"expression": "x", "data": {"x": 2}} and call.session_id and call.error is None


async def test_calls_are_published_on_the_gateway_channel(make_app: Any, mcp_call: Any) -> None:
    async with (
        served(make_app()) as base,
        connect(base.replace("http://", "ws://") + "/ws") as ws,
        httpx.AsyncClient(base_url=base) as client,
    ):
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        await mcp_call(client, "json-query", "infer_schema", {"data": [1]}, headers={"X-Session-ID": "live"})
        event = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    assert event["channel"] == "gateway" and event["type"] == "mcp.tool_call"
    data = event["data"]
    assert (data["server"], data["tool"], data["outcome"]) == ("json-query", "infer_schema", "ok")
    assert data["session_id"] and data["latency_ms"] > 0


async def test_tenants_see_only_their_calls_and_scopes_apply(
    make_app: Any, create_key: Any, mcp_call: Any
) -> None:
    app = make_app()
    async with running(app) as client:
        acme = await create_key(app, tenant="acme", scopes=("write",))
        other = await create_key(app, tenant="other", scopes=("write",))
        reader = await create_key(app, tenant="acme", scopes=("read",))
        as_acme = {"Authorization": f"Bearer {acme}"}
        await mcp_call(client, "json-query", "infer_schema", {"data": 1}, headers=as_acme)
        await mcp_call(client, "json-query", "infer_schema", {"data": 2}, headers={"X-API-Key": other})

        acme_calls = (await client.get("/api/mcp-gateway/calls", headers=as_acme)).json()["items"]
        assert [c["arguments"] for c in acme_calls] == [{"data": 1}]
        read_only = {"Authorization": f"Bearer {reader}"}
        assert (await client.get("/api/mcp-gateway/calls", headers=read_only)).status_code == 200
        assert (await client.get("/api/mcp-gateway/servers", headers=read_only)).status_code == 200
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        refused = await client.post("/api/mcp-gateway/json-query/rpc", json=body, headers=read_only)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        anonymous = await client.post("/api/mcp-gateway/json-query/rpc", json=body)
        assert anonymous.status_code == 401


async def test_the_log_survives_a_restart_and_can_be_switched_off(
    make_app: Any, app_with: Any, mcp_call: Any
) -> None:
    app = make_app()
    async with running(app) as client:
        await mcp_call(client, "json-query", "infer_schema", {"data": 1})
    async with running(app) as client:
        assert len((await client.get("/api/mcp-gateway/calls")).json()["items"]) == 1

    quiet = app_with(mcp_gateway={"log_calls": False})
    async with running(quiet) as client:
        await mcp_call(client, "json-query", "infer_schema", {"data": 1})
        assert len((await client.get("/api/mcp-gateway/calls")).json()["items"]) == 1


@pytest.mark.postgres
async def test_the_log_and_thought_histories_on_postgresql(
    make_app: Any, postgres_url: str, mcp_call: Any
) -> None:
    app = make_app(database_url=postgres_url)
    thought = {
        "thought": "t",
        "nextThoughtNeeded": True,
        "thoughtNumber": 9007199254740991,
        "totalThoughts": 1,
    }
    headers = {"X-Session-ID": "pg"}
    async with running(app) as client:
        first = await mcp_call(client, "sequential-thinking", "sequentialthinking", thought, headers=headers)
        assert first["structuredContent"]["totalThoughts"] == 9007199254740991
    async with running(app) as client:
        again = await mcp_call(client, "sequential-thinking", "sequentialthinking", thought, headers=headers)
        assert again["structuredContent"]["thoughtHistoryLength"] == 2
        calls = (await client.get("/api/mcp-gateway/calls", params={"tool": "sequentialthinking"})).json()[
            "items"
        ]
        assert [c["outcome"] for c in calls] == ["ok", "ok"]
