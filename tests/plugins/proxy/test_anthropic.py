"""The anthropic provider: OpenAI requests become Messages API requests and the answers,
streamed or not, come back in OpenAI's format (text, tool calls, usage)."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from proxy_upstream import Turn, Upstream

CONVERSATION: list[Any] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "weather in Oslo?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "toolu_0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "toolu_0", "content": "rain"},
    {"role": "user", "content": [{"type": "text", "text": "and tomorrow?"}]},
]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


async def test_requests_are_translated_to_the_messages_api(gateway: Any, upstream: Upstream) -> None:
    async with gateway() as gw:
        answer = await gw.sdk().chat.completions.create(
            model="claude/claude-test",
            messages=CONVERSATION,
            tools=[TOOL],
            tool_choice="required",
            stop="END",
        )
    seen = upstream.seen[0]
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == "ak-test" and seen.headers["anthropic-version"] == "2023-06-01"
    body = seen.body
    assert body["system"] == "be brief" and body["max_tokens"] == 4096 and body["stop_sequences"] == ["END"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_0", "name": "get_weather", "input": {"city": "Oslo"}}
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_0", "content": "rain"},
        {"type": "text", "text": "and tomorrow?"},
    ]
    assert body["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
    assert body["tool_choice"] == {"type": "any"}
    assert answer.choices[0].message.content == "echo: and tomorrow?"
    assert (
        answer.usage is not None and answer.usage.prompt_tokens == 11 and answer.usage.completion_tokens == 3
    )


async def test_tool_use_comes_back_as_tool_calls(gateway: Any, upstream: Upstream) -> None:
    upstream.then(Turn(reply="checking", tool_call={"name": "get_weather", "arguments": {"city": "Bergen"}}))
    async with gateway() as gw:
        answer = await gw.sdk().chat.completions.create(
            model="claude-test", messages=CONVERSATION, tools=[TOOL]
        )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "checking"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.id == "toolu_1" and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert call.function.arguments == '{"city":"Bergen"}'  # type: ignore[union-attr]


async def test_streams_are_translated_chunk_by_chunk(gateway: Any, upstream: Upstream) -> None:
    upstream.then(
        Turn(reply="sunny and warm", tool_call={"name": "get_weather", "arguments": {"city": "Rome"}})
    )
    async with gateway() as gw:
        stream = await gw.sdk().chat.completions.create(
            model="claude/claude-test",
            messages=CONVERSATION,
            tools=[TOOL],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert upstream.seen[0].body["stream"] is True
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.content or "" for d in deltas) == "sunny and warm "
    calls = [d.tool_calls[0] for d in deltas if d.tool_calls]
    assert calls[0].id == "toolu_1" and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert "".join(c.function.arguments or "" for c in calls) == '{"city":"Rome"}'  # type: ignore[union-attr]
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 11
    assert chunks[-1].usage.completion_tokens == 3


async def test_overloaded_anthropic_falls_back(gateway: Any, upstream: Upstream) -> None:
    upstream.then(Turn(status=529, error="Overloaded"), Turn(reply="backup here"))
    async with gateway(retries=0, fallbacks={"claude/claude-test": ["backup/gpt-backup"]}) as gw:
        answer = await gw.sdk().chat.completions.create(model="claude/claude-test", messages=CONVERSATION)
    assert answer.choices[0].message.content == "backup here"
    upstream.then(Turn(status=529, error="Overloaded"))
    async with gateway(retries=0) as gw:
        with pytest.raises(openai.APIStatusError) as failed:
            await gw.sdk().chat.completions.create(model="claude/claude-test", messages=CONVERSATION)
    assert failed.value.status_code == 502 and "Overloaded" in failed.value.message
