"""Compaction: the strategies on long conversations, auto mode in the gateway pipeline, and the
11 routes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from mnemogate.core import tokens
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, running, served
from mnemogate.plugins.compaction import strategies
from mnemogate.plugins.compaction.service import Remembered

SECRET = "AKIAQ3EGRUVWXYZ23456"
FACT = "The deployment password rotation happens every 37 days at Zurich."


def conversation(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": f"Start the project. {FACT}"},
    ]
    for i in range(turns):
        call = {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": "read", "arguments": f'{{"n": {i}}}'},
        }
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call_{i}", "content": f"file {i}: " + "data line here. " * 40},
            {"role": "assistant", "content": f"Read file {i}; it configures module {i} of the build."},
            {"role": "user", "content": f"Next please, step {i}."},
        ]
    return messages


def assert_pairs_intact(messages: list[dict[str, Any]]) -> None:
    calls = {c["id"] for m in messages for c in m.get("tool_calls") or ()}
    results = {m["tool_call_id"] for m in messages if m.get("role") == "tool"}
    assert calls == results


@pytest.mark.parametrize("name", ["truncate", "sliding_window", "clear_tool_outputs", "summarize", "layered"])
def test_strategies_fit_the_budget_and_never_split_tool_pairs(name: str) -> None:
    messages = conversation(20)
    strategy = strategies.builtin()[name]
    before = strategies.count(messages)
    for budget in (600, 1500, 4000):
        result = strategy.compact(messages, budget=budget, count_tokens=tokens.count_text)
        assert result.tokens_before == before and result.tokens_after == strategies.count(result.messages)
        assert result.messages[0]["role"] == "system"
        assert_pairs_intact(result.messages)
        if name != "clear_tool_outputs":  # clearing alone may not reach a small budget
            assert result.tokens_after <= budget, (name, budget)
        assert result.messages[-1] == messages[-1]
    small = strategy.compact(messages, budget=900, count_tokens=tokens.count_text)
    if name == "truncate":
        assert small.messages[1]["content"].endswith(FACT)  # the first user turn stays
    if name == "clear_tool_outputs":
        cleared = [m for m in small.messages if m.get("role") == "tool" and "cleared" in m["content"]]
        assert cleared and len(small.messages) == len(messages)
    if name in ("summarize", "layered"):
        summary = next(
            m["content"] for m in small.messages if m["content"] and "[Summary" in str(m["content"])
        )
        assert "37" in summary and "Zurich" in summary  # the planted fact survives in the summary


class Recorder:
    """Sees each request as it leaves (after the whole pipeline)."""

    plugin_name = "recorder"

    def __init__(self) -> None:
        self.sent: list[list[dict[str, Any]]] = []

    @hookimpl(trylast=True)
    def chat_request(self, ctx: Any) -> None:
        self.sent.append(orjson.loads(orjson.dumps(ctx.body["messages"])))


async def test_auto_mode_compacts_once_per_prefix_and_the_routes_show_it(app_with: Any) -> None:
    recorder = Recorder()
    app = app_with(plugins=[recorder], compaction={"context_window": 4096, "reserved_tokens": 512})
    session = str(uuid.uuid4())
    headers = {"X-Session-ID": session}
    first = conversation(24)
    first[7]["content"] += f" key={SECRET}"  # a tool output compaction drops
    async with running(app, headers=headers) as client:
        small = await client.post("/v1/chat/completions", json={"model": "mock/echo", "messages": first[:4]})
        assert small.status_code == 200
        assert recorder.sent[-1] == first[:4]  # under the threshold: untouched

        status = (await client.get(f"/api/compaction/{session}/auto-status")).json()
        assert status["enabled"] and status["context_window"] == 4096 and status["reserved_tokens"] == 512
        assert status["threshold"] == 3276 and status["last_compaction"] is None

        assert (
            await client.post("/v1/chat/completions", json={"model": "mock/echo", "messages": first})
        ).is_success
        compacted = recorder.sent[-1]
        assert strategies.count(compacted) <= status["target_tokens"] < strategies.count(first)
        assert_pairs_intact(compacted)

        second = [*first, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "and now?"}]
        assert (
            await client.post("/v1/chat/completions", json={"model": "mock/echo", "messages": second})
        ).is_success
        assert recorder.sent[-1] == [*compacted, *second[len(first) :]]  # the compaction reused

        history = (await client.get(f"/api/compaction/{session}/history")).json()
        assert len(history["items"]) == 1
        record = history["items"][0]
        assert record["trigger"] == "auto" and record["strategy"] == "layered"
        assert record["tokens_before"] == strategies.count(first) and record["saved_tokens"] > 0

        shown = await client.get(f"/api/compaction/{session}/preview", params={"strategy": "truncate"})
        assert SECRET not in shown.text and "[MASKED:aws_access_key:" in shown.text  # masked like requests
        preview = shown.json()
        assert preview["strategy"] == "truncate" and preview["removed"] and preview["summary"] is None
        assert (
            await client.get(f"/api/compaction/{session}/preview", params={"strategy": "nope"})
        ).status_code == 400
        assert (await client.get(f"/api/compaction/{uuid.uuid4()}/preview")).status_code == 404

        chart = await client.get(f"/api/compaction/{session}/history-chart")
        assert chart.headers["content-type"].startswith("image/svg+xml") and b"<polyline" in chart.content
        series = (
            await client.get(f"/api/compaction/{session}/history-chart", params={"format": "json"})
        ).json()
        assert [p["tokens_after"] for p in series] == [record["tokens_after"]]

        manual = await client.post(
            f"/api/compaction/{session}",
            json={"messages": first, "strategy": "sliding_window", "budget": 800},
        )
        assert manual.status_code == 200
        assert (
            strategies.count(manual.json()["messages"]) <= 800
            and manual.json()["record"]["trigger"] == "manual"
        )
        assert (await client.post(f"/api/compaction/{session}", json={"messages": []})).status_code == 422

        stats = (await client.get(f"/api/compaction/{session}/stats")).json()
        assert stats["compactions"] == 2 and stats["auto"] == 1 and stats["manual"] == 1
        assert stats["by_strategy"] == {"layered": 1, "sliding_window": 1}
        assert (await client.get("/api/compaction/stats")).json()["sessions"] == 1

        off = (await client.post(f"/api/compaction/{session}/toggle-auto", json={})).json()
        assert off["enabled"] is False
        assert (
            await client.post("/v1/chat/completions", json={"model": "mock/echo", "messages": first})
        ).is_success
        sent = recorder.sent[-1]  # auto off: everything went, masked
        assert len(sent) == len(first) and sent[:7] == first[:7] and SECRET not in str(sent)
        reserved = (
            await client.post(f"/api/compaction/{session}/reserved", json={"reserved_tokens": 2048})
        ).json()
        assert reserved["reserved_tokens"] == 2048 and reserved["threshold"] == 2048
        assert (
            await client.post(f"/api/compaction/{session}/reserved", json={"reserved_tokens": "9"})
        ).status_code == 422

        simulation = await client.post(f"/api/compaction/{session}/simulate", json={"context_window": 2048})
        assert simulation.status_code == 200
        figures = simulation.json()
        assert figures["requests"] == 4 and figures["triggers"] >= 1 and figures["tokens_saved"] > 0

        form = (await client.get("/api/compaction/config/ui")).json()
        assert "layered" in form["strategies"] and form["values"]["context_window"] == 4096
        assert form["json_schema"]["properties"]["strategy"]["enum"] == form["strategies"]


async def test_summaries_come_from_the_summary_model_and_compactions_reach_the_ws(
    mnemogate_settings: Any,
) -> None:
    tables = {
        "providers": {"mock": {"replies": ["Earlier: the rotation happens every 37 days at Zurich."]}},
        "compaction": {"summary_model": "mock/scripted"},
    }
    settings = mnemogate_settings.model_copy(update={"plugins": PluginsConfig.model_validate(tables)})
    session = str(uuid.uuid4())
    async with (
        served(build_app(settings)) as base,
        connect(base.replace("http://", "ws://") + "/ws") as ws,
        httpx.AsyncClient(base_url=base) as http,
    ):
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "subscribed"
        body = {"messages": conversation(20), "strategy": "summarize", "budget": 900}
        response = await http.post(f"/api/compaction/{session}", json=body)
        assert response.status_code == 200, response.text
        summary = next(m["content"] for m in response.json()["messages"] if "[Summary" in str(m["content"]))
        assert summary == strategies.SUMMARY_PREFIX + "Earlier: the rotation happens every 37 days at Zurich."
        while (event := orjson.loads(await asyncio.wait_for(ws.recv(), 5)))["type"] != "compaction.done":
            pass
        assert event["data"]["session_id"] == session and event["data"]["strategy"] == "summarize"
        assert event["data"]["tokens_after"] == response.json()["record"]["tokens_after"]


def test_token_counts_continue_from_the_last_request_of_a_conversation() -> None:
    memory = Remembered()
    first = conversation(5)
    assert memory.count(first) == strategies.count(first)
    longer = [*first, {"role": "user", "content": "one more question about module 3"}]
    assert memory.count(longer) == strategies.count(longer)
    edited = [{**longer[0], "content": "You are a very different agent now."}, *longer[1:]]
    assert memory.count(edited) == strategies.count(edited) != strategies.count(longer)
