"""JSON-RPC 2.0 to the built-in servers through POST /api/mcp-gateway/{server}/rpc: the MCP
methods, batches, the JSON-RPC error objects, and the gateway's own errors in the envelope."""

from __future__ import annotations

from typing import Any

import orjson

INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}


async def test_initialize_ping_and_listings(client: Any, mcp_rpc: Any, mcp_call: Any) -> None:
    reply = await mcp_rpc(client, "json-query", "initialize", INIT)
    assert reply["id"] == 1 and reply["jsonrpc"] == "2.0"
    result = reply["result"]
    assert result["protocolVersion"] == "2025-06-18"
    assert result["serverInfo"]["name"] == "json-query" and "tools" in result["capabilities"]
    assert (await mcp_rpc(client, "json-query", "ping"))["result"] == {}
    tools = (await mcp_rpc(client, "json-query", "tools/list"))["result"]["tools"]
    assert {t["name"] for t in tools} == {"query_json", "infer_schema", "stream_query"}
    assert all(t["inputSchema"]["type"] == "object" and t["description"] for t in tools)


async def test_tools_call_answers_the_tool_result(client: Any, mcp_rpc: Any, mcp_call: Any) -> None:
    data = {"people": [{"name": "ada", "age": 36}, {"name": "alan", "age": 41}]}
    result = await mcp_call(
        client, "json-query", "query_json", {"expression": "people[?age > `40`].name", "data": data}
    )
    assert result["isError"] is False
    assert result["structuredContent"] == {"language": "jmespath", "result": ["alan"]}
    assert orjson.loads(result["content"][0]["text"]) == result["structuredContent"]


async def test_tool_failures_are_tool_results_not_protocol_errors(
    client: Any, mcp_rpc: Any, mcp_call: Any
) -> None:
    bad_arguments = await mcp_call(client, "json-query", "query_json", {"data": {}})
    assert bad_arguments["isError"] is True and "expression" in bad_arguments["content"][0]["text"]
    unknown_tool = await mcp_call(client, "json-query", "no_such_tool", {})
    assert unknown_tool["isError"] is True and "Unknown tool" in unknown_tool["content"][0]["text"]


async def test_resources_and_prompts(client: Any, mcp_rpc: Any, mcp_call: Any) -> None:
    resources = (await mcp_rpc(client, "fast-filesystem", "resources/list"))["result"]["resources"]
    assert [r["uri"] for r in resources] == ["fs://roots"]
    read = (await mcp_rpc(client, "fast-filesystem", "resources/read", {"uri": "fs://roots"}))["result"]
    roots = orjson.loads(read["contents"][0]["text"])
    assert roots["read_only"] is False and len(roots["roots"]) == 1
    missing = await mcp_rpc(client, "fast-filesystem", "resources/read", {"uri": "fs://nothing"})
    assert missing["error"]["code"] == -32602

    templates = (await mcp_rpc(client, "sequential-thinking", "resources/templates/list"))["result"]
    assert templates["resourceTemplates"][0]["uriTemplate"] == "thinking://history/{session}"
    prompts = (await mcp_rpc(client, "sequential-thinking", "prompts/list"))["result"]["prompts"]
    assert prompts[0]["name"] == "think-step-by-step"
    assert prompts[0]["arguments"] == [{"name": "problem", "required": True}]
    prompt = await mcp_rpc(
        client,
        "sequential-thinking",
        "prompts/get",
        {"name": "think-step-by-step", "arguments": {"problem": "2+2"}},
    )
    assert "Problem: 2+2" in prompt["result"]["messages"][0]["content"]["text"]
    unknown = await mcp_rpc(client, "sequential-thinking", "prompts/get", {"name": "nope"})
    assert unknown["error"]["code"] == -32602 and "nope" in unknown["error"]["message"]


async def post(client: Any, body: Any, server: str = "json-query") -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(
        f"/api/mcp-gateway/{server}/rpc", content=raw, headers={"content-type": "application/json"}
    )


async def test_parse_error_and_invalid_requests_refuse_the_body(
    client: Any, mcp_rpc: Any, mcp_call: Any
) -> None:
    for body, code in [
        (b"{not json", -32700),
        (b"", -32700),
        ([], -32600),
        ("a string", -32600),
        ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, -32600),
        ({"jsonrpc": "2.0", "id": 1}, -32600),
        ({"jsonrpc": "2.0", "id": 1, "method": 7}, -32600),
        ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}, -32600),
        ({"jsonrpc": "2.0", "id": True, "method": "ping"}, -32600),
        ({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": "x"}, -32600),
    ]:
        response = await post(client, body)
        assert response.status_code == 400, body
        reply = response.json()
        assert reply["jsonrpc"] == "2.0" and reply["id"] is None
        assert reply["error"]["code"] == code, body


async def test_method_and_params_errors(client: Any, mcp_rpc: Any, mcp_call: Any) -> None:
    unknown = await mcp_rpc(client, "json-query", "tools/destroy")
    assert unknown["error"]["code"] == -32601 and unknown["id"] == 1
    for method, params in [
        ("tools/call", {"arguments": {}}),
        ("tools/call", {"name": 5}),
        ("tools/call", {"name": "query_json", "arguments": [1, 2]}),
        ("tools/call", ["query_json"]),
        ("resources/read", {}),
        ("prompts/get", {}),
        ("initialize", {"capabilities": {}}),
    ]:
        reply = await mcp_rpc(client, "json-query", method, params)
        assert reply["error"]["code"] == -32602, (method, params)
        assert "result" not in reply


async def test_batches_answer_each_member_in_order(client: Any, mcp_rpc: Any, mcp_call: Any) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "nope"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "infer_schema", "arguments": {"data": [1, 2.5]}},
        },
        42,
        {"jsonrpc": "2.0", "id": 4.5, "method": "tools/call", "params": {"name": 1}},
    ]
    response = await post(client, batch)
    assert response.status_code == 200
    replies = response.json()
    assert [r["id"] for r in replies] == ["a", 2, 3, None, 4.5]
    assert replies[0]["result"] == {}
    assert replies[1]["error"]["code"] == -32601
    schema = replies[2]["result"]["structuredContent"]
    assert schema["type"] == "array" and schema["items"] == {"type": "number"}
    assert replies[3]["error"]["code"] == -32600
    assert replies[4]["error"]["code"] == -32602


async def test_notifications_get_no_answer(client: Any, mcp_rpc: Any, mcp_call: Any) -> None:
    single = await post(client, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert single.status_code == 202 and single.content == b""
    batch = await post(client, [{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {}}] * 2)
    assert batch.status_code == 202 and batch.content == b""


async def test_unknown_server_is_a_404_in_the_error_envelope(
    client: Any, mcp_rpc: Any, mcp_call: Any
) -> None:
    response = await post(client, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, server="nope")
    assert response.status_code == 404
    error = response.json()["error"]
    assert (
        error["code"] == "mcp_server_not_found" and error["type"] == "not_found_error" and error["request_id"]
    )


async def test_server_listing(client: Any, mcp_rpc: Any, mcp_call: Any) -> None:
    response = await client.get("/api/mcp-gateway/servers", params={"limit": 2})
    assert response.status_code == 200
    page = response.json()
    assert [s["name"] for s in page["items"]] == ["sequential-thinking", "fast-filesystem"]
    rest = (await client.get("/api/mcp-gateway/servers", params={"cursor": page["next_cursor"]})).json()
    names = [s["name"] for s in page["items"] + rest["items"]]
    assert names == [
        "sequential-thinking",
        "fast-filesystem",
        "json-query",
        "context-compression",
        "pruner",
        "memory",
    ]
    pruner = rest["items"][-2]
    assert pruner == {
        "name": "pruner",
        "plugin": "mcp_pruner",
        "transport": "in-process",
        "status": "ready",
        "tools": ["prune_messages"],
        "endpoint": "/mcp/servers/pruner",
        "restarts": 0,
        "last_error": None,
    }


async def test_a_disabled_server_plugin_is_not_routed(make_client: Any) -> None:
    async with make_client(disabled=["mcp_pruner"]) as client:
        names = [s["name"] for s in (await client.get("/api/mcp-gateway/servers")).json()["items"]]
        assert "pruner" not in names
        assert (
            await post(client, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, "pruner")
        ).status_code == 404
