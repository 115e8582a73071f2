"""The compress plugin: its routes, its engine behind the context-compression MCP server, and its
optional pipeline step in front of a recording upstream."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from mnemogate.core import tokens
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.testing import running

FILE = "\n".join(f"def function_{i}(x):\n    return x * {i} # keeps the result" for i in range(30))
TOOL_LOG = "\n".join(f"line {i}: processing item {i} of 500" for i in range(500))
DOCUMENT = {"items": [{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(20)]}


def conversation() -> list[dict[str, Any]]:
    call = {"id": "c1", "type": "function", "function": {"name": "read", "arguments": '{"path": "a.py"}'}}
    return [
        {"role": "system", "content": "You are   a coding agent."},
        {"role": "user", "content": "Read a.py please."},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": FILE},
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": orjson.dumps(DOCUMENT, option=orjson.OPT_INDENT_2).decode(),
        },
        {"role": "tool", "tool_call_id": "c1", "content": TOOL_LOG},
        {"role": "user", "content": [{"type": "text", "text": f"Here it is again:\n\n{FILE}"}]},
        {"role": "tool", "tool_call_id": "c1", "content": FILE},
        {"role": "user", "content": "What does   function_3 return?"},
    ]


async def test_messages_are_compressed_and_counted_per_session(client: httpx.AsyncClient) -> None:
    session = str(uuid.uuid4())
    messages = conversation()
    response = await client.post(f"/api/compress/{session}", json={"messages": messages})
    assert response.status_code == 200, response.text
    result = response.json()
    out = result["messages"]
    assert [m["role"] for m in out] == [m["role"] for m in messages]
    assert out[2]["tool_calls"] == messages[2]["tool_calls"]
    assert out[0]["content"] == "You are a coding agent."
    assert out[3]["content"] == FILE  # first read kept whole
    assert orjson.loads(out[4]["content"]) == DOCUMENT and "\n" not in out[4]["content"]  # JSON compacted
    assert "[... 400 lines folded ...]" in out[5]["content"] and out[5]["content"].startswith("line 0:")
    assert out[5]["content"].endswith("line 499: processing item 499 of 500")
    assert out[6]["content"][0]["text"] == "Here it is again:\n\n[repeated block from message 3 above]"
    assert out[7]["content"] == "[same content as message 3 above]"
    assert out[8]["content"] == "What does function_3 return?"  # the last message: only normalised
    assert result["tokens_before"] == tokens.count_messages(messages)
    assert result["tokens_after"] == tokens.count_messages(out) < result["tokens_before"] // 2
    assert result["changes"] == {
        "json_documents": 1,
        "repeated_lines": 0,
        "repeated_blocks": 2,
        "folded_outputs": 1,
        "folded_lines": 400,
    }

    text = await client.post(f"/api/compress/{session}", json={"text": "a   b  \n\n\n\nc\nc\nc"})
    assert text.json()["text"] == "a b\n\nc\n[previous line repeated 2 more times]"

    stats = (await client.get(f"/api/compress/{session}/stats")).json()
    assert stats["runs"] == 2 and stats["by_source"]["route"]["runs"] == 2
    assert stats["saved_tokens"] == result["saved_tokens"] + text.json()["saved_tokens"]
    other = (await client.get(f"/api/compress/{uuid.uuid4()}/stats")).json()
    assert other["runs"] == 0 and other["ratio"] == 1.0
    tenant = (await client.get("/api/compress/stats")).json()
    assert tenant["sessions"] == 1 and tenant["runs"] == 2 and tenant["pipeline_enabled"] is False


async def test_bad_input_is_refused(client: httpx.AsyncClient) -> None:
    session = str(uuid.uuid4())
    for body in ({}, {"text": "a", "messages": []}, {"messages": "x"}, {"text": 3}):
        response = await client.post(f"/api/compress/{session}", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"]
    assert (await client.post("/api/compress/not-a-uuid", json={"text": "a"})).status_code == 404


async def test_the_context_compression_mcp_server_uses_this_engine(
    client: httpx.AsyncClient, mcp_call: Any
) -> None:
    messages = conversation()
    out = (await mcp_call(client, "context-compression", "compress_messages", {"messages": messages}))[
        "structuredContent"
    ]
    assert out["engine"] == "compress"
    assert out["messages"][7]["content"] == "[same content as message 3 above]"
    assert out["tokens_after"] == tokens.count_messages(out["messages"])
    text = (
        await mcp_call(client, "context-compression", "compress_text", {"text": FILE + "\n\n\n\n" + FILE})
    )["structuredContent"]
    assert text["engine"] == "compress" and text["text"] == FILE + "\n\n" + FILE


async def test_the_pipeline_step_is_off_by_default_and_compresses_requests_when_on(
    app_with: Any, make_app: Any
) -> None:
    seen: list[dict[str, Any]] = []

    class Recorder:
        plugin_name = "recorder"

        @hookimpl(trylast=True)
        def chat_request(self, ctx: Any) -> None:
            seen.append(orjson.loads(orjson.dumps(ctx.body)))

    body = {"model": "mock/echo", "messages": conversation()}
    async with running(make_app(plugins=[Recorder()])) as client:
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
    async with running(app_with(plugins=[Recorder()], compress={"pipeline": True})) as client:
        response = await client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200
        stats = (await client.get("/api/compress/stats")).json()
    assert seen[0]["messages"] == body["messages"]
    assert seen[1]["messages"][7]["content"] == "[same content as message 3 above]"
    assert stats["by_source"]["pipeline"]["runs"] == 1 and stats["pipeline_enabled"] is True
    assert stats["by_source"]["pipeline"]["saved_tokens"] > 500
