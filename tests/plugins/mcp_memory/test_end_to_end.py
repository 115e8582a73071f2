"""The whole loop, as the issue describes it: a conversation through the gateway (mock provider,
OpenAI SDK) is captured together with its MCP tool calls; promoting its patterns creates
entities and a skill; a new session asking a related question gets the fact injected, as the
provider receives it."""

from __future__ import annotations

import asyncio
from typing import Any

import openai

from mnemogate.core.testing import TEST_BASE_URL, running

CONVERSATION = [
    "Ana wants to visit Lisbon in May.",
    "Ana loves the old trams of Lisbon.",
    "Book a hotel for Ana near the river.",
]


async def test_capture_promote_and_inject(
    memory_routes_app: Any, recorder: Any, create_key: Any, mcp_call: Any
) -> None:
    app = memory_routes_app()
    async with running(app) as client:
        key = await create_key(app)
        client.headers["Authorization"] = f"Bearer {key}"
        sdk = openai.AsyncOpenAI(
            base_url=f"{TEST_BASE_URL}/v1", api_key=key, http_client=client, max_retries=0
        )
        headers = {"X-Mnemogate-Memory": "capture", "X-Session-ID": "ana trip"}
        messages: list[dict[str, Any]] = []
        for turn in CONVERSATION:
            messages.append({"role": "user", "content": turn})
            raw = await sdk.chat.completions.with_raw_response.create(
                model="mock/echo", messages=messages, extra_headers=headers
            )
            messages.append({"role": "assistant", "content": raw.parse().choices[0].message.content})
            for tool, arguments in (
                ("query_json", {"expression": "a", "data": {"a": 1}}),
                ("infer_schema", {"data": [1]}),
            ):
                await mcp_call(client, "json-query", tool, arguments, headers={"X-Session-ID": "ana trip"})
        session = raw.headers["x-session-id"]
        await client.get("/api/mcp-gateway/calls")  # reading the call log flushes it to the hooks
        for _ in range(100):
            memory = (await client.get(f"/api/sessions/{session}/memory", params={"limit": 100})).json()
            if len(memory["items"]) >= 12:
                break
            await asyncio.sleep(0.05)
        promoted = await client.post(f"/api/memory/promote-patterns/{session}")
        frequent = (await client.get("/api/memory/frequent", params={"min_support": 3})).json()["items"]
        skills = (await client.get("/api/v1/skills")).json()["items"]

        question = [{"role": "user", "content": "Which city does Ana want to visit?"}]
        await sdk.chat.completions.create(
            model="rec/model",
            messages=question,
            extra_headers={"X-Mnemogate-Memory": "inject", "X-Session-ID": "new"},
        )
        unknown = await client.post("/api/memory/promote-patterns/no-such-session")

    roles = [e["role"] for e in memory["items"]]
    assert roles.count("user") == 3 and roles.count("assistant") == 3 and roles.count("tool") == 6
    assert promoted.status_code == 200, promoted.text
    result = promoted.json()
    assert {"Ana", "Lisbon"} <= set(result["entities_created"])
    assert len(result["skills_created"]) == 1
    (skill,) = skills
    assert skill["name"] == "json-query/query_json -> json-query/infer_schema"
    assert frequent[0]["signature"] == skill["name"] and frequent[0]["support"] == 3
    sent = recorder.provider.bodies[0]["messages"]
    assert (
        sent[0]["role"] == "system"
        and "- Ana (entity): Ana wants to visit Lisbon in May." in sent[0]["content"]
    )
    assert sent[1:] == question
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
