"""The pruner server: to a token budget by relevance and recency, tool calls kept with their
results; relevance by a registered embedder when there is one, lexical otherwise."""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np

from mnemogate.core import tokens
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.testing import running

# The memory core registers embedders (MiniLM by default); without it none is registered.
NO_EMBEDDERS = ["embedders", "memory", "episodic", "semantic", "procedural", "mem0_compat"]
FILLER = " and some more words to make this message cost tokens" * 3


def conversation() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Tell me about the weather in Paris." + FILLER},
        {"role": "assistant", "content": "It is sunny in Paris today." + FILLER},
        {"role": "user", "content": "What database should I use for embeddings?" + FILLER},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "search_docs", "arguments": '{"q": "pgvector database"}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": "pgvector stores embeddings in PostgreSQL database tables." + FILLER,
        },
        {"role": "assistant", "content": "A good database choice is PostgreSQL with pgvector." + FILLER},
        {"role": "user", "content": "Recipes for pancakes?" + FILLER},
        {"role": "assistant", "content": "Flour, eggs, milk." + FILLER},
        {"role": "user", "content": "Back to the database: how do I index embeddings in pgvector?"},
    ]


async def prune(client: Any, mcp_call: Any, **arguments: Any) -> dict[str, Any]:
    result = await mcp_call(client, "pruner", "prune_messages", arguments)
    assert result["isError"] is False, result
    return result["structuredContent"]


async def test_prunes_by_lexical_relevance_without_an_embedder(make_app: Any, mcp_call: Any) -> None:
    messages = conversation()
    total = tokens.count_messages(messages)
    async with running(make_app(disabled=NO_EMBEDDERS)) as client:
        result = await prune(client, mcp_call, messages=messages, budget_tokens=total - 100)
    assert result["relevance"] == {"method": "lexical", "reason": "no embedder is registered"}
    assert (
        result["tokens_before"] == total and result["tokens_after"] <= total - 100 and result["within_budget"]
    )
    removed = {i for r in result["removed"] for i in r["indices"]}
    assert removed and removed <= {1, 2, 7, 8}  # weather and pancakes go first; the database thread stays
    kept = result["messages"]
    assert kept[0]["role"] == "system" and kept[-1] == messages[-1]
    assert tokens.count_messages(kept) == result["tokens_after"]


async def test_tool_calls_stay_with_their_results(client: Any, mcp_call: Any) -> None:
    messages = conversation()
    result = await prune(client, mcp_call, messages=messages, budget_tokens=60, query="pancakes", keep_last=1)
    kept_roles = [m["role"] for m in result["messages"]]
    has_call = any(m.get("tool_calls") for m in result["messages"])
    assert has_call == ("tool" in kept_roles)
    call_unit = next(r for r in result["removed"] if 4 in r["indices"])
    assert call_unit["indices"] == [4, 5] and call_unit["roles"] == ["assistant", "tool"]
    assert result["messages"][0]["role"] == "system" and result["messages"][-1] == messages[-1]
    assert result["within_budget"] is True
    assert result["tokens_after"] == tokens.count_messages(result["messages"]) <= 60
    impossible = await prune(client, mcp_call, messages=messages, budget_tokens=5)
    assert impossible["within_budget"] is False and impossible["tokens_after"] > 5  # said, not hidden


async def test_nothing_is_removed_within_budget_and_bad_input_is_refused(client: Any, mcp_call: Any) -> None:
    messages = conversation()
    result = await prune(client, mcp_call, messages=messages, budget_tokens=100_000)
    assert result["removed"] == [] and result["messages"] == messages
    bad = await mcp_call(
        client, "pruner", "prune_messages", {"messages": [{"content": "no role"}], "budget_tokens": 5}
    )
    assert bad["isError"] and "role" in bad["content"][0]["text"]


class KeywordEmbedder:
    """A deterministic embedder (feature hashing of words), as the memory core registers them."""

    name, dim = "test-words", 256

    async def embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w{3,}", text.lower()):
                vectors[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)


class EmbedderPlugin:
    plugin_name = "test_embedder"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    @hookimpl
    def register_embedders(self, register: Any) -> None:
        register("test-words", lambda registry: Broken() if self.fail else KeywordEmbedder())


class Broken:
    name, dim = "broken", 4

    async def embed(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("model not loaded")


async def test_prunes_by_embedding_similarity_with_a_registered_embedder(
    make_app: Any, mcp_call: Any
) -> None:
    messages = conversation()
    async with running(make_app(plugins=[EmbedderPlugin()], disabled=NO_EMBEDDERS)) as client:
        result = await prune(
            client, mcp_call, messages=messages, budget_tokens=tokens.count_messages(messages) - 100
        )
        assert result["relevance"] == {"method": "embedding", "embedder": "test-words"}
        removed = {i for r in result["removed"] for i in r["indices"]}
        assert removed and removed <= {1, 2, 7, 8}
        scores = {r["indices"][0]: r["relevance"] for r in result["removed"]}
        assert all(0 <= score <= 1 for score in scores.values())
    async with running(make_app(plugins=[EmbedderPlugin(fail=True)], disabled=NO_EMBEDDERS)) as client:
        result = await prune(client, mcp_call, messages=messages, budget_tokens=200)
        assert result["relevance"]["method"] == "lexical"
        assert "failed" in result["relevance"]["reason"]


async def test_a_missing_named_embedder_falls_back_and_says_so(app_with: Any, mcp_call: Any) -> None:
    async with running(app_with(mcp_pruner={"embedder": "minilm"}, disabled=NO_EMBEDDERS)) as client:
        result = await prune(client, mcp_call, messages=conversation(), budget_tokens=200)
    assert result["relevance"] == {"method": "lexical", "reason": "the embedder 'minilm' is not registered"}


async def test_prunes_with_the_memory_cores_default_embedder(client: Any, mcp_call: Any) -> None:
    """With every built-in plugin the pruner finds the memory core's MiniLM and ranks by meaning."""
    messages = conversation()
    result = await prune(
        client, mcp_call, messages=messages, budget_tokens=tokens.count_messages(messages) - 100
    )
    assert result["relevance"] == {"method": "embedding", "embedder": "minilm"}
    removed = {i for r in result["removed"] for i in r["indices"]}
    assert removed and removed <= {1, 2, 7, 8}
