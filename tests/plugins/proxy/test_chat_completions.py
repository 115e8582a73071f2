"""/chat/completions through a real mnemogate server to a real upstream, with the official
OpenAI SDK as the client: streaming and not, tools, usage, errors, timeouts, retries,
fallbacks, 429 passthrough and client disconnects."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import pytest
from proxy_upstream import Turn, Upstream

from mnemogate.core.contracts import ChatContext
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.testing import TEST_BASE_URL, running

HELLO = [{"role": "user", "content": "hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


async def test_a_fresh_install_answers_offline_with_the_mock(make_app: Any, create_key: Any) -> None:
    app = make_app()
    async with running(app) as client:
        raw = await client.post("/chat/completions", json={"messages": HELLO})
        assert raw.status_code == 200 and raw.json()["choices"][0]["message"]["content"] == "hello there"
        assert float(raw.headers["x-mnemogate-overhead-ms"]) >= 0
        key = await create_key(app)
        sdk = openai.AsyncOpenAI(
            base_url=f"{TEST_BASE_URL}/v1", api_key=key, http_client=client, max_retries=0
        )
        answer = await sdk.chat.completions.create(model="mock/echo", messages=HELLO)
    assert answer.choices[0].message.content == "hello there"
    assert answer.usage is not None and answer.usage.completion_tokens == 2


async def test_non_streaming_forwards_unknown_fields_and_returns_the_upstream_answer(
    gateway: Any, upstream: Upstream
) -> None:
    async with gateway() as gw:
        sdk = gw.sdk()
        raw = await sdk.chat.completions.with_raw_response.create(
            model="up/gpt-test", messages=HELLO, temperature=0.2, extra_body={"vendor_knob": {"x": 1}}
        )
        answer = raw.parse()
    assert answer.choices[0].message.content == "echo: hello there"
    assert answer.usage is not None and answer.usage.prompt_tokens == 7
    assert float(raw.headers["x-mnemogate-overhead-ms"]) >= 0
    seen = upstream.seen[0]
    assert seen.body["model"] == "gpt-test" and seen.body["vendor_knob"] == {"x": 1}
    assert seen.body["temperature"] == 0.2
    assert seen.headers["authorization"] == "Bearer sk-upstream-key-1"


async def test_plain_model_names_and_aliases_find_their_provider(gateway: Any, upstream: Upstream) -> None:
    async with gateway(aliases={"fast": "backup/gpt-backup"}) as gw:
        sdk = gw.sdk()
        await sdk.chat.completions.create(model="gpt-test", messages=HELLO)
        await sdk.chat.completions.create(model="fast", messages=HELLO)
        with pytest.raises(openai.NotFoundError) as missing:
            await sdk.chat.completions.create(model="no-such-model", messages=HELLO)
    assert [s.body["model"] for s in upstream.seen] == ["gpt-test", "gpt-backup"]
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]


async def test_streaming_passes_chunks_through_as_they_arrive(gateway: Any, upstream: Upstream) -> None:
    release = asyncio.Event()
    upstream.then(Turn(hold=release))
    async with gateway() as gw:
        sdk = gw.sdk()
        stream = await sdk.chat.completions.create(
            model="up/gpt-test", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        # The upstream holds the rest of its answer until the client has seen the first chunk:
        # a gateway that buffered would never deliver it.
        first = await asyncio.wait_for(anext(stream), 5)
        assert first.choices[0].delta.role == "assistant"
        release.set()
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there "
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 10
    assert upstream.finished_streams == 1


async def test_tool_calls_round_trip_streaming_and_not(gateway: Any, upstream: Upstream) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    upstream.then(Turn(tool_call=call), Turn(tool_call=call))
    async with gateway() as gw:
        sdk = gw.sdk()
        answer = await sdk.chat.completions.create(model="up/gpt-test", messages=HELLO, tools=[WEATHER_TOOL])
        stream = await sdk.chat.completions.create(
            model="up/gpt-test", messages=HELLO, tools=[WEATHER_TOOL], stream=True
        )
        chunks = [chunk async for chunk in stream]
    tool = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert answer.choices[0].finish_reason == "tool_calls"
    assert tool.function.name == "get_weather" and tool.function.arguments == '{"city":"Oslo"}'  # type: ignore[union-attr]
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert deltas[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert "".join(d.function.arguments or "" for d in deltas) == '{"city":"Oslo"}'  # type: ignore[union-attr]
    assert upstream.seen[0].body["tools"] == [WEATHER_TOOL]


async def test_upstream_errors_come_back_in_the_error_envelope(gateway: Any, upstream: Upstream) -> None:
    upstream.then(Turn(status=400, error="messages must not be empty"), Turn(status=401))
    async with gateway() as gw:
        sdk = gw.sdk()
        with pytest.raises(openai.BadRequestError) as bad:
            await sdk.chat.completions.create(model="up/gpt-test", messages=HELLO)
        async with gw.http() as http:
            refused = await http.post(
                "/v1/chat/completions", json={"model": "up/gpt-test", "messages": HELLO}
            )
    error: Any = bad.value.body
    assert "messages must not be empty" in error["message"] and error["code"] == "e400"
    assert error["type"] == "invalid_request_error" and error["request_id"]
    # The gateway's own upstream key was refused: a 502, never a 401 the caller would misread.
    assert refused.status_code == 502 and refused.json()["error"]["code"] == "upstream_auth_error"
    assert "sk-upstream" not in refused.text
    assert "x-mnemogate-overhead-ms" in refused.headers
    assert len(upstream.seen) == 2  # client errors are not retried


async def test_server_errors_are_retried_then_fall_back(gateway: Any, upstream: Upstream) -> None:
    upstream.then(Turn(status=500), Turn(status=503), Turn(reply="from the backup"))
    async with gateway(fallbacks={"up/gpt-test": ["backup/gpt-backup"]}, retries=1) as gw:
        answer = await gw.sdk().chat.completions.create(model="up/gpt-test", messages=HELLO)
    assert answer.choices[0].message.content == "from the backup"
    assert [s.body["model"] for s in upstream.seen] == ["gpt-test", "gpt-test", "gpt-backup"]


async def test_connect_errors_fall_back(gateway: Any, upstream: Upstream) -> None:
    async with gateway(fallbacks={"down/gpt-down": ["up/gpt-test"]}, retries=0) as gw:
        # A plain name falls back like the provider/model it stands for.
        answer = await gw.sdk().chat.completions.create(model="gpt-down", messages=HELLO)
    assert answer.choices[0].message.content == "echo: hello there"
    async with gateway(retries=1) as gw, gw.http() as http:
        alone = await http.post("/v1/chat/completions", json={"model": "down/gpt-down", "messages": HELLO})
    assert alone.status_code == 502 and alone.json()["error"]["code"] == "upstream_unavailable"


async def test_retry_after_is_honoured_and_long_waits_pass_the_429_through(
    gateway: Any, upstream: Upstream
) -> None:
    upstream.then(
        Turn(status=429, headers={"retry-after": "0.3", "x-ratelimit-remaining-requests": "0"}),
        Turn(reply="after waiting"),
        Turn(status=429, headers={"retry-after": "120"}),
    )
    async with gateway(retries=2, max_retry_wait_seconds=1) as gw:
        sdk = gw.sdk()
        answer = await sdk.chat.completions.create(model="up/gpt-test", messages=HELLO)
        with pytest.raises(openai.RateLimitError) as limited:
            await sdk.chat.completions.create(model="up/gpt-test", messages=HELLO)
    assert answer.choices[0].message.content == "after waiting"
    assert upstream.seen[1].at - upstream.seen[0].at >= 0.3
    assert limited.value.response.headers["retry-after"] == "120"
    assert limited.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    assert len(upstream.seen) == 3  # a 2-minute Retry-After is not waited out


async def test_timeouts_answer_504_or_fall_back(gateway: Any, upstream: Upstream) -> None:
    upstream.then(Turn(delay=3), Turn(delay=3))
    async with gateway(retries=0) as gw:
        async with gw.http() as http:
            started = time.monotonic()
            slow = await http.post("/v1/chat/completions", json={"model": "up/gpt-test", "messages": HELLO})
            assert time.monotonic() - started < 2.5
        assert slow.status_code == 504 and slow.json()["error"]["code"] == "upstream_timeout"
    async with gateway(retries=0, fallbacks={"up/gpt-test": ["backup/gpt-backup"]}) as gw:
        answer = await gw.sdk().chat.completions.create(model="up/gpt-test", messages=HELLO)
    assert answer.choices[0].message.content == "echo: hello there"


async def test_a_client_that_hangs_up_cancels_the_upstream_call(gateway: Any, upstream: Upstream) -> None:
    upstream.then(Turn(reply="one two three four five six", chunk_delay=0.5))
    async with gateway() as gw, gw.http() as http:
        body = {"model": "up/gpt-test", "messages": HELLO, "stream": True}
        async with http.stream("POST", "/v1/chat/completions", json=body) as response:
            async for _ in response.aiter_bytes():
                break
        await asyncio.wait_for(upstream.disconnected.wait(), 5)
    assert upstream.finished_streams == 0


async def test_models_and_providers_are_listed(gateway: Any) -> None:
    async with gateway(aliases={"fast": "up/gpt-test"}) as gw:
        models = await gw.sdk().models.list()
        async with gw.http() as http:
            providers = (await http.get("/api/providers")).json()["items"]
            enabled = (await http.get("/api/models", params={"limit": 500})).json()["items"]
            every = (await http.get("/api/models/all", params={"limit": 500})).json()["items"]
    ids = {m.id for m in models.data}
    assert {"up/gpt-test", "up/priced", "backup/gpt-backup", "claude/claude-test", "mock/echo", "fast"} <= ids
    assert {p["name"]: p["kind"] for p in providers} == {
        "up": "openai_compatible",
        "backup": "openai_compatible",
        "down": "openai_compatible",
        "claude": "anthropic",
        "mock": "mock",
    }
    priced = next(m for m in enabled if m["id"] == "up/priced")
    assert priced["input_price_per_mtok"] == 1.0 and priced["output_price_per_mtok"] == 2.0
    catalogued = next(m for m in every if m["id"] == "backup/gpt-4o")
    assert catalogued["enabled"] is False and catalogued["context_window"] == 128000
    assert "backup/gpt-4o" not in {m["id"] for m in enabled}


class PipelineProbe:
    """A plugin on the gateway pipeline: adds a system message, upper-cases streamed text and
    sees the finished exchange."""

    plugin_name = "probe"

    def __init__(self) -> None:
        self.finished: list[ChatContext] = []

    @hookimpl
    def chat_request(self, ctx: ChatContext) -> None:
        ctx.body["messages"].insert(0, {"role": "system", "content": "remember: tea"})
        ctx.chunk_filters.append(lambda block: block.replace(b"echo:", b"ECHO:"))

    @hookimpl
    async def chat_response(self, ctx: ChatContext) -> None:
        self.finished.append(ctx)


async def test_pipeline_hooks_run_around_every_call(gateway: Any, upstream: Upstream) -> None:
    probe = PipelineProbe()
    async with gateway(plugins=[probe]) as gw:
        sdk = gw.sdk()
        await sdk.chat.completions.create(model="up/priced", messages=HELLO)
        stream = await sdk.chat.completions.create(model="up/gpt-test", messages=HELLO, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        for _ in range(50):
            if len(probe.finished) == 2:
                break
            await asyncio.sleep(0.02)
    assert upstream.seen[0].body["messages"][0] == {"role": "system", "content": "remember: tea"}
    assert text.startswith("ECHO:")
    plain, streamed = probe.finished
    assert plain.provider == "up" and plain.model == "priced" and plain.status == 200
    assert plain.usage["prompt_tokens"] == 7 and plain.model_info is not None
    assert plain.latency_ms is not None and plain.overhead_ms is not None and plain.upstream_ms is not None
    assert plain.latency_ms >= plain.overhead_ms
    assert streamed.stream and streamed.response is not None
    assert streamed.response["choices"][0]["message"]["content"] == "echo: hello there "
    assert streamed.ttft_ms is not None


async def test_upstream_rate_limit_headers_reach_the_rate_limit_route(
    gateway: Any, upstream: Upstream
) -> None:
    headers = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499"}
    upstream.then(Turn(headers=headers))
    async with gateway() as gw:
        await gw.sdk().chat.completions.create(model="up/gpt-test", messages=HELLO)
        async with gw.http() as http:
            bucket = (await http.get("/api/rate-limit")).json()
            metrics = (await http.get("/metrics")).text
    assert bucket["upstream"]["up"]["x-ratelimit-remaining-requests"] == "499"
    assert bucket["upstream"]["up"]["seen_at"].endswith("+00:00")
    assert 'mnemogate_gateway_overhead_seconds_count{provider="up"} 1.0' in metrics


async def test_rate_limit_route_works_without_the_proxy(make_client: Any) -> None:
    async with make_client(disabled=["proxy"]) as client:
        bucket = (await client.get("/api/rate-limit")).json()
        assert bucket["upstream"] == {}
        assert (await client.post("/v1/chat/completions", json={"messages": HELLO})).status_code == 404


async def test_bad_requests_get_a_clear_400(client: httpx.AsyncClient) -> None:
    not_json = await client.post(
        "/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
    )
    no_messages = await client.post("/v1/chat/completions", json={"model": "mock/echo"})
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    assert no_messages.status_code == 400 and "messages" in no_messages.json()["error"]["message"]


async def test_the_mock_emits_errors_and_429s_on_demand(client: httpx.AsyncClient) -> None:
    body: dict[str, Any] = {
        "model": "mock/echo",
        "messages": HELLO,
        "mock": {"status": 429, "retry_after": 30},
    }
    limited = await client.post("/v1/chat/completions", json=body)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "30"
    body["mock"] = {"status": 500}
    failed = await client.post("/v1/chat/completions", json=body)
    assert failed.status_code == 502 and failed.json()["error"]["type"] == "server_error"
