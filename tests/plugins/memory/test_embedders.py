"""The embedders: MiniLM is the real model (checked against known similarities), the remote
embedder talks to a real HTTP server, the hashing one is deterministic; batching and the cache."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI

from mnemogate.core.errors import Unavailable
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.testing import running, served
from mnemogate.plugins.embedders.hashing import HashingEmbedder
from mnemogate.plugins.embedders.minilm import MiniLMEmbedder
from mnemogate.plugins.embedders.remote import RemoteEmbedder


async def test_minilm_matches_the_reference_model() -> None:
    embedder = MiniLMEmbedder()
    vectors = await embedder.embed(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The new movie is awesome.",
            "The stock market fell sharply today.",
        ]
    )
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar = float(vectors[0] @ vectors[1])
    assert 0.72 <= similar <= 0.78  # sentence-transformers gives 0.755 for this pair
    for i, j in ((0, 2), (0, 3), (2, 3)):
        assert abs(float(vectors[i] @ vectors[j])) < 0.15
    alone = await embedder.embed(["A man is eating a piece of bread."])
    assert np.allclose(alone[0], vectors[1], atol=1e-4)  # padding in a batch changes nothing


async def test_hashing_is_deterministic_and_normalised() -> None:
    embedder = HashingEmbedder(64)
    one, two = (
        await embedder.embed(["deploy the service"]),
        await HashingEmbedder(64).embed(["deploy the service"]),
    )
    assert np.array_equal(one, two) and abs(float(np.linalg.norm(one[0])) - 1) < 1e-6
    vectors = await embedder.embed(["deploy the service", "deploying services", "bake bread"])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def fake_embeddings_api(calls: list[list[str]]) -> FastAPI:
    api = FastAPI()

    @api.post("/v1/embeddings")
    async def embeddings(body: dict[str, Any]) -> dict[str, Any]:
        calls.append(body["input"])
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 1.0, 0.0, 2.0]}
            for i, text in enumerate(body["input"])
        ]
        return {"object": "list", "model": body["model"], "data": list(reversed(data))}

    return api


async def test_remote_embedder_against_a_real_server() -> None:
    calls: list[list[str]] = []
    async with served(fake_embeddings_api(calls)) as base:
        embedder = RemoteEmbedder(url=f"{base}/v1", model="m", dim=4, batch=2, api_key="secret")
        vectors = await embedder.embed(["a", "bbb", "cc"])
        await embedder.close()
        assert calls == [["a", "bbb"], ["cc"]]
        expected = np.array([[1, 1, 0, 2], [3, 1, 0, 2], [2, 1, 0, 2]], dtype=np.float32)
        assert np.allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True))
        wrong = RemoteEmbedder(url=f"{base}/v1", model="m", dim=8)
        with pytest.raises(Unavailable, match="shape"):
            await wrong.embed(["a"])
        await wrong.close()
    gone = RemoteEmbedder(url=base, model="m", dim=4, timeout=1)
    with pytest.raises(Unavailable, match="unreachable"):
        await gone.embed(["a"])
    await gone.close()


async def test_remote_embedder_serves_recall_in_an_app(memory_client: Any) -> None:
    calls: list[list[str]] = []
    async with served(fake_embeddings_api(calls)) as base:
        settings = {
            "memory": {"embedder": "remote"},
            "embedders": {"remote_url": f"{base}/v1", "remote_dimensions": 4},
        }
        async with memory_client(**settings) as client:
            await client.post("/api/v1/episodes", json={"content": "hello"})
            recalled = await client.post("/api/v1/episodes/recall", json={"query": "hello"})
            assert [i["episode"]["content"] for i in recalled.json()["items"]] == ["hello"]
        assert calls == [["hello"]]  # the query "hello" came from the content-hash cache


class CountingEmbedder(HashingEmbedder):
    """A third-party embedder that records the size of every call it gets."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(16)
        self.calls: list[int] = []
        self.delay = delay

    async def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        await asyncio.sleep(self.delay)
        return await super().embed(texts)


class CountingPlugin:
    plugin_name = "counting"

    def __init__(self, delay: float = 0.0) -> None:
        self.embedder = CountingEmbedder(delay)

    @hookimpl
    def register_embedders(self, register: Any) -> None:
        register("counting", lambda registry: self.embedder)


async def test_engine_batches_and_caches(memory_app: Any) -> None:
    plugin = CountingPlugin()
    app = memory_app(
        extra_plugins=[plugin], memory={"embedder": "counting", "embed_batch": 2, "embed_cache_size": 3}
    )
    async with running(app) as client:
        batch = {"episodes": [{"content": text} for text in ("a", "b", "c", "a", "d")]}
        assert (await client.post("/api/v1/episodes", json=batch)).status_code == 201
        assert plugin.embedder.calls == [2, 2]  # four distinct texts in batches of two
        await client.post("/api/v1/episodes/recall", json={"query": "d"})
        await client.post("/api/v1/episodes/recall", json={"query": "c"})
        assert plugin.embedder.calls == [2, 2]  # both queries were cached
        await client.post("/api/v1/episodes/recall", json={"query": "a"})
        assert plugin.embedder.calls == [2, 2, 1]  # "a" was evicted (the cache holds 3)


async def test_a_text_embedded_for_concurrent_recalls_runs_the_model_once(memory_app: Any) -> None:
    plugin = CountingPlugin(delay=0.05)  # a model slow enough for the recalls to overlap
    app = memory_app(extra_plugins=[plugin], memory={"embedder": "counting"})
    async with running(app) as client:
        await client.post("/api/v1/episodes", json={"content": "a trip to Lisbon"})
        await client.post("/api/v1/entities", json={"name": "Lisbon"})
        await client.post("/api/v1/skills", json={"name": "plan a trip"})
        plugin.embedder.calls.clear()
        recalls = await asyncio.gather(
            client.post("/api/v1/episodes/recall", json={"query": "Lisbon trip"}),
            client.post("/api/v1/entities/search", json={"query": "Lisbon trip"}),
            client.post("/api/v1/skills/match", json={"task": "Lisbon trip"}),
        )
        assert [r.status_code for r in recalls] == [200, 200, 200]
        assert all(r.json()["items"] for r in recalls)
        assert plugin.embedder.calls == [1]
