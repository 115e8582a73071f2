"""Capture and injection through the gateway, with the official OpenAI SDK as the client:
exchanges become episodes of their session only when asked, memories of the caller's tenant
go into the request the provider receives as one system message within the token budget, MCP
tool calls of a capturing session become episodes with their server, and a request that asks
for nothing reaches the provider untouched."""

from __future__ import annotations

from typing import Any

import openai
from bridge_helpers import episodes_of, until

from mnemogate.core.testing import TEST_BASE_URL, running

CAPTURE = {"X-Mnemogate-Memory": "capture"}
INJECT = {"X-Mnemogate-Memory": "inject"}


def sdk(client: Any, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{TEST_BASE_URL}/v1", api_key=key, http_client=client, max_retries=0)


async def test_a_captured_exchange_becomes_episodes_of_its_session(
    bridge_app: Any, recorder: Any, create_key: Any
) -> None:
    recorder.provider.replies = ["Lisbon is lovely in May.", "Book the Alfama hotel then."]
    app = bridge_app()
    async with running(app) as client:
        key = await create_key(app)
        client.headers["Authorization"] = f"Bearer {key}"
        gpt = sdk(client, key)
        history = [
            {"role": "system", "content": "You plan trips."},
            {"role": "user", "content": "Where should Ana travel in May?"},
        ]
        raw = await gpt.chat.completions.with_raw_response.create(
            model="rec/model", messages=history, extra_headers={**CAPTURE, "X-Session-ID": "trip"}
        )
        session = raw.headers["x-session-id"]
        answer = raw.parse().choices[0].message.content
        history += [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "And where should she stay?"},
        ]
        stream = await gpt.chat.completions.create(
            model="rec/model",
            messages=history,
            stream=True,
            extra_headers={**CAPTURE, "X-Session-ID": "trip"},
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        episodes = await until(lambda: _with_count(client, session, 4))
    assert [(e["role"], e["content"]) for e in episodes] == [
        ("user", "Where should Ana travel in May?"),
        ("assistant", "Lisbon is lovely in May."),
        ("user", "And where should she stay?"),
        ("assistant", streamed),
    ]
    assert streamed.strip() == "Book the Alfama hotel then."
    assert {e["session_id"] for e in episodes} == {session}
    assert episodes[1]["metadata"]["source"] == "gateway" and episodes[1]["metadata"]["model"] == "rec/model"


async def _with_count(client: Any, session: str, count: int) -> list[dict[str, Any]] | None:
    found = await episodes_of(client, session)
    return found if len(found) >= count else None


async def test_without_a_mode_nothing_is_captured_and_the_request_is_untouched(
    bridge_app: Any, recorder: Any, create_key: Any
) -> None:
    messages = [{"role": "user", "content": "Ana likes Lisbon"}]
    app = bridge_app()
    async with running(app) as client:
        key = await create_key(app)
        client.headers["Authorization"] = f"Bearer {key}"
        await client.post("/api/v1/entities", json={"name": "Ana", "description": "Ana likes Lisbon"})
        raw = await sdk(client, key).chat.completions.with_raw_response.create(
            model="rec/model", messages=messages
        )
        session = raw.headers["x-session-id"]
        off = await sdk(client, key).chat.completions.with_raw_response.create(
            model="rec/model", messages=messages, extra_headers={"X-Mnemogate-Memory": "off"}
        )
        assert off.http_response.status_code == 200
        assert await until(lambda: episodes_of(client, session), seconds=0.3) == []
    assert [body["messages"] for body in recorder.provider.bodies] == [messages, messages]


async def test_an_unknown_mode_is_refused_in_the_error_envelope(bridge_app: Any) -> None:
    async with running(bridge_app()) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "rec/model", "messages": [{"role": "user", "content": "hi"}]},
            headers={"X-Mnemogate-Memory": "inject,remember"},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_header" and "remember" in error["message"]


async def test_injection_adds_the_tenants_memories_as_one_system_message(
    bridge_app: Any, recorder: Any, create_key: Any
) -> None:
    app = bridge_app()
    async with running(app) as client:
        acme = {"Authorization": f"Bearer {await create_key(app, tenant='acme')}"}
        other = await create_key(app, tenant="globex")
        facts = [
            {"name": "Ana", "type": "person", "description": "Ana's favourite city is Lisbon"},
            {"name": "Bruno", "type": "person", "description": "Bruno collects old maps"},
        ]
        for fact in facts:
            assert (await client.post("/api/v1/entities", json=fact, headers=acme)).status_code == 201
        skill = {
            "name": "book a city trip",
            "description": "plan a city trip for a person",
            "steps": ["a", "b"],
        }
        assert (await client.post("/api/v1/skills", json=skill, headers=acme)).status_code == 201
        question = [
            {"role": "system", "content": "You plan trips."},
            {"role": "user", "content": "Which city should Ana visit on her trip?"},
        ]
        key = acme["Authorization"].split()[1]
        raw = await sdk(client, key).chat.completions.with_raw_response.create(
            model="rec/model", messages=question, extra_headers=INJECT
        )
        session = raw.headers["x-session-id"]
        await sdk(client, other).chat.completions.create(
            model="rec/model", messages=question, extra_headers=INJECT
        )
        bridge = app.state.registry.services["memory_bridge"]
        logged = await until(lambda: _injections(bridge, "acme", session))
        assert await _injections(bridge, "globex", None) == []
    sent = recorder.provider.bodies[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "system", "user"]
    assert sent[0] == question[0] and sent[2] == question[1]
    memory = sent[1]["content"]
    assert "Known facts:\n- Ana (person): Ana's favourite city is Lisbon" in memory
    assert "book a city trip" in memory
    # Another tenant's question recalls nothing of acme's, so its request goes out as it came.
    assert recorder.provider.bodies[1]["messages"] == question
    assert {m.type for m in logged[0].memories} == {"semantic", "procedural"}
    assert logged[0].tokens > 0


async def _injections(bridge: Any, tenant: str, session: str | None) -> list[Any]:
    return (await bridge.injections(tenant, session, limit=10, cursor=None)).items


async def test_injection_stays_within_the_token_budget(
    bridge_app: Any, recorder: Any, create_key: Any
) -> None:
    app = bridge_app(memory_bridge={"inject_budget_tokens": 60})
    async with running(app) as client:
        key = await create_key(app)
        client.headers["Authorization"] = f"Bearer {key}"
        for n in range(6):
            fact = {"name": f"Lisbon fact {n}", "description": "Lisbon " + "tram and tiles " * 4}
            assert (await client.post("/api/v1/entities", json=fact)).status_code == 201
        await sdk(client, key).chat.completions.create(
            model="rec/model",
            messages=[{"role": "user", "content": "Tell me about Lisbon"}],
            extra_headers=INJECT,
        )
    from mnemogate.core.tokens import count_message

    injected = recorder.provider.bodies[0]["messages"][0]
    assert injected["role"] == "system" and "Lisbon fact" in injected["content"]
    assert 1 <= injected["content"].count("\n- ") < 6
    assert count_message(injected) <= 60


async def test_mcp_tool_calls_of_a_capturing_session_become_episodes(bridge_app: Any, mcp_call: Any) -> None:
    async with running(bridge_app()) as client:
        headers = {**CAPTURE, "X-Session-ID": "agent run"}
        chat = await client.post(
            "/v1/chat/completions",
            json={"model": "rec/model", "messages": [{"role": "user", "content": "query the data"}]},
            headers=headers,
        )
        session = chat.headers["x-session-id"]
        arguments = {"expression": "a", "data": {"a": 1}}
        await mcp_call(client, "json-query", "query_json", arguments, headers={"X-Session-ID": "agent run"})
        await mcp_call(client, "json-query", "query_json", arguments, headers={"X-Session-ID": "elsewhere"})
        await client.get("/api/mcp-gateway/calls")  # reads flush the call log, which calls the hooks
        episodes = await until(lambda: _with_count(client, session, 3))
        tool = [e for e in episodes if e["role"] == "tool"]
        everywhere = (await client.get("/api/v1/episodes", params={"limit": 100})).json()["items"]
    assert len(tool) == 1
    assert tool[0]["actor"] == "json-query/query_json" and tool[0]["outcome"] == "success"
    assert tool[0]["metadata"]["server"] == "json-query" and tool[0]["metadata"]["arguments"] == arguments
    assert len([e for e in everywhere if e["role"] == "tool"]) == 1


AWS_KEY = "AKIAQ3EGRUVWXYZ23456"


async def test_a_secret_in_a_captured_exchange_is_stored_only_as_its_placeholder(
    bridge_app: Any, create_key: Any, mcp_call: Any
) -> None:
    app = bridge_app()
    async with running(app) as client:
        key = await create_key(app)
        client.headers["Authorization"] = f"Bearer {key}"
        headers = {**CAPTURE, "X-Session-ID": "deploy"}
        asked = [{"role": "user", "content": f"deploy with key {AWS_KEY} please"}]
        raw = await sdk(client, key).chat.completions.with_raw_response.create(
            model="mock/echo", messages=asked, extra_headers=headers
        )
        session = raw.headers["x-session-id"]
        stream = await sdk(client, key).chat.completions.create(
            model="mock/echo", messages=asked, stream=True, extra_headers=headers
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await mcp_call(
            client, "json-query", "query_json", {"expression": "a", "data": {"a": AWS_KEY}}, headers=headers
        )
        await client.get("/api/mcp-gateway/calls")
        episodes = await until(lambda: _with_count(client, session, 5))
    # The client got its secret back (the sanitizer restored it), memory holds the placeholder.
    assert AWS_KEY in raw.parse().choices[0].message.content and AWS_KEY in streamed  # type: ignore[operator]
    assert len(episodes) == 5
    for episode in episodes:
        stored = str(episode)
        assert AWS_KEY not in stored and "[MASKED:aws_access_key:" in stored, episode


async def test_a_session_can_capture_without_the_header(bridge_app: Any, create_key: Any) -> None:
    app = bridge_app()
    async with running(app) as client:
        key = await create_key(app)
        client.headers["Authorization"] = f"Bearer {key}"
        first = await client.post(
            "/v1/chat/completions",
            json={"model": "rec/model", "messages": [{"role": "user", "content": "before the modes"}]},
            headers={"X-Session-ID": "notes"},
        )
        session = first.headers["x-session-id"]
        unset = (await client.get(f"/api/sessions/{session}/memory-modes")).json()
        put = await client.put(f"/api/sessions/{session}/memory-modes", json={"modes": ["capture"]})
        for text, headers in (
            ("captured by the session", {}),
            ("switched off", {"X-Mnemogate-Memory": "off"}),
        ):
            await client.post(
                "/v1/chat/completions",
                json={"model": "rec/model", "messages": [{"role": "user", "content": text}]},
                headers={"X-Session-ID": "notes", **headers},
            )
        episodes = await until(lambda: _with_count(client, session, 2))
        bad = await client.put(f"/api/sessions/{session}/memory-modes", json={"modes": ["remember"]})
        cleared = await client.delete(f"/api/sessions/{session}/memory-modes")
        again = await client.delete(f"/api/sessions/{session}/memory-modes")
    assert unset == {"session_id": session, "modes": [], "configured": False, "updated_at": None}
    assert put.status_code == 200 and put.json()["modes"] == ["capture"] and put.json()["configured"]
    assert [(e["role"], e["content"]) for e in episodes] == [
        ("user", "captured by the session"),
        ("assistant", "noted"),
    ]
    assert bad.status_code == 422 and cleared.status_code == 204 and again.status_code == 404
