"""The context-compression server: the built-in engine, a token budget, and the compress plugin's
engine when one is running (here a test plugin publishing the ``compress`` service in place of
the built-in ``compress`` plugin, whose own engine is tested in tests/plugins/compress)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from mnemogate.core import tokens
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.testing import running

LOG = "\n".join(["start"] + ["retrying connection   to   upstream"] * 40 + ["", "", "", "done"])


async def test_the_builtin_engine(make_client: Any, mcp_call: Any) -> None:
    async with make_client(disabled=["compress"]) as client:
        result = (await mcp_call(client, "context-compression", "compress_text", {"text": LOG}))[
            "structuredContent"
        ]
    assert (
        result["text"]
        == "start\nretrying connection to upstream\n[previous line repeated 39 more times]\n\ndone"
    )
    assert result["engine"] == "builtin"
    assert result["tokens_before"] == tokens.count_text(LOG) and result["tokens_after"] == tokens.count_text(
        result["text"]
    )
    assert result["saved_tokens"] == result["tokens_before"] - result["tokens_after"] > 0


async def test_a_budget_elides_the_middle(client: Any, mcp_call: Any) -> None:
    text = "\n".join(f"paragraph {i}: " + "words " * 20 for i in range(50))
    result = (
        await mcp_call(client, "context-compression", "compress_text", {"text": text, "target_tokens": 200})
    )["structuredContent"]
    assert result["tokens_after"] <= 200 < result["tokens_before"]
    assert result["text"].startswith("paragraph 0:") and result["text"].rstrip().endswith("words")
    assert "tokens omitted" in result["text"]


async def test_messages_keep_their_shape(client: Any, mcp_call: Any) -> None:
    messages = [
        {"role": "system", "content": "be   brief"},
        {"role": "user", "content": LOG},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "a\n\n\n\nb"}]},
        {"role": "user", "content": "last   question"},
    ]
    result = (await mcp_call(client, "context-compression", "compress_messages", {"messages": messages}))[
        "structuredContent"
    ]
    out = result["messages"]
    assert [m["role"] for m in out] == ["system", "user", "assistant", "tool", "user"]
    assert out[0]["content"] == "be brief" and out[2]["tool_calls"] == messages[2]["tool_calls"]
    assert out[3] == {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "a\n\nb"}]}
    assert result["tokens_before"] == tokens.count_messages(messages) > result["tokens_after"]
    budget = (
        await mcp_call(
            client, "context-compression", "compress_messages", {"messages": messages, "target_tokens": 40}
        )
    )["structuredContent"]
    assert budget["tokens_after"] <= 40 and budget["messages"][-1]["content"] == "last question"


@dataclass
class Compressed:
    text: str


class FakeCompressPlugin:
    """Publishes a ``compress`` service with the interface PLUGINS.md asks of the compress plugin."""

    plugin_name = "fake_compress"

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def compress_text(self, text: str) -> Compressed:
        self.calls.append("text")
        return Compressed(text[:20])

    def compress_messages(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append("messages")
        return {"messages": [{**m, "content": "short"} for m in messages]}

    @hookimpl
    def startup(self, app: FastAPI) -> None:
        app.state.registry.provide("compress", self, plugin="compress")


async def test_the_compress_plugin_engine_is_used_when_present(
    make_app: Any, app_with: Any, mcp_call: Any
) -> None:
    engine = FakeCompressPlugin()
    async with running(make_app(plugins=[engine], disabled=["compress"])) as client:
        text = (await mcp_call(client, "context-compression", "compress_text", {"text": LOG}))[
            "structuredContent"
        ]
        assert text["engine"] == "compress" and text["text"] == LOG[:20]
        messages = [{"role": "user", "content": "a long message " * 20}]
        out = (await mcp_call(client, "context-compression", "compress_messages", {"messages": messages}))[
            "structuredContent"
        ]
        assert out["engine"] == "compress" and out["messages"] == [{"role": "user", "content": "short"}]
        assert out["tokens_after"] == tokens.count_messages(out["messages"])
        assert engine.calls == ["text", "messages"]
    off = app_with(
        plugins=[FakeCompressPlugin()],
        disabled=["compress"],
        mcp_context_compression={"use_compress_plugin": False},
    )
    async with running(off) as client:
        text = (await mcp_call(client, "context-compression", "compress_text", {"text": LOG}))[
            "structuredContent"
        ]
        assert text["engine"] == "builtin"
