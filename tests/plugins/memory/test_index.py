"""The storage backend's index, through the memory engine of a running app: exact and
approximate search agree with brute force, filters never lose results, deletes and updates
take effect, and the in-memory index follows other processes' writes and survives restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from mnemogate.core.contracts import IndexFilters, IndexItem
from mnemogate.core.testing import running

KIND = "test-kind"
DIM = 32
START = datetime(2024, 1, 1, tzinfo=UTC)


def clustered(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, 20, count)] + 0.6 * rng.standard_normal((count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def items(vectors: np.ndarray, offset: int = 0) -> list[IndexItem]:
    return [
        IndexItem(
            id=f"item-{offset + i}",
            vector=vector,
            text=f"item number {offset + i} colour {('red', 'green', 'blue')[(offset + i) % 3]}",
            attrs={
                "user_id": f"user-{(offset + i) % 7}",
                "session_id": f"session-{(offset + i) % 50}",
                "occurred_at": START + timedelta(hours=offset + i),
                "metadata": {"parity": (offset + i) % 2, "tag": "x" if (offset + i) % 10 == 0 else "y"},
            },
        )
        for i, vector in enumerate(vectors)
    ]


async def write(app: FastAPI, tenant: str, batch: list[IndexItem]) -> None:
    registry = app.state.registry
    async with registry.db.write() as session:
        await registry.services["memory"].index.upsert(session, tenant, KIND, batch)


def brute_force(
    vectors: np.ndarray, query: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> list[str]:
    scores = vectors @ query
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    order = np.argsort(-scores)[:k]
    return [f"item-{i}" for i in order if np.isfinite(scores[i])]


@pytest.mark.parametrize("exact_limit", [100_000, 300], ids=["exact", "ivf"])
async def test_vector_search_matches_brute_force_with_and_without_filters(
    memory_app: Any, exact_limit: int
) -> None:
    app = memory_app(sqlite_index={"exact_limit": exact_limit, "ivf_lists": 16, "ivf_probes": 4})
    vectors = clustered(2000)
    async with running(app):
        for start in range(0, 2000, 500):
            await write(app, "t", items(vectors[start : start + 500], start))
        index = app.state.registry.services["memory"].index
        queries = clustered(20, seed=1)
        overlap = []
        for query in queries:
            hits = await index.vector_search("t", KIND, query, k=10)
            expected = brute_force(vectors, query, 10)
            overlap.append(len({h.id for h in hits} & set(expected)) / 10)
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert np.mean(overlap) >= (1.0 if exact_limit > 2000 else 0.9)

        numbers = np.arange(2000)
        selective = IndexFilters(user_id="user-3", session_id="session-17")  # 1 in 350 items: ~6 items
        broad = IndexFilters(user_id="user-3", since=START + timedelta(hours=500))
        tagged = IndexFilters(metadata={"tag": "x", "parity": 0})
        cases = [
            (selective, (numbers % 7 == 3) & (numbers % 50 == 17)),
            (broad, (numbers % 7 == 3) & (numbers >= 500)),
            (tagged, numbers % 10 == 0),
        ]
        for filters, allowed in cases:
            for query in queries[:5]:
                hits = await index.vector_search("t", KIND, query, k=10, filters=filters)
                expected = brute_force(vectors, query, 10, allowed)
                assert {h.id for h in hits} <= {f"item-{i}" for i in np.flatnonzero(allowed)}
                assert len({h.id for h in hits} & set(expected)) >= (
                    len(expected) if filters is selective else 9
                )
        assert (
            await index.vector_search("t", KIND, queries[0], k=5, filters=IndexFilters(user_id="nobody"))
            == []
        )
        assert await index.vector_search("other-tenant", KIND, queries[0], k=5) == []


@pytest.mark.parametrize("exact_limit", [100_000, 300], ids=["exact", "ivf"])
async def test_a_partition_kept_in_step_by_writes_equals_one_loaded_afterwards(
    memory_app: Any, exact_limit: int, backend: str
) -> None:
    """Writes to a loaded partition are applied as written (no read-back); the partition then
    answers like one loaded from the database: new items, changed ones, unembedded ones."""
    if backend != "sqlite":
        pytest.skip("in-memory partitions are the embedded backend's")
    settings = {"sqlite_index": {"exact_limit": exact_limit, "ivf_lists": 8, "ivf_probes": 8}}
    vectors = clustered(800)
    queries = clustered(10, seed=3)
    first = memory_app(**settings)
    async with running(first):
        index = first.state.registry.services["memory"].index
        await write(first, "t", items(vectors[:200]))
        await index.vector_search("t", KIND, queries[0], k=1)  # loaded from here on
        changed = [*items(-vectors[:2]), IndexItem(id="item-2", vector=None, text="no vector now")]
        batches = [items(vectors[start : start + 150], start) for start in range(200, 800, 150)]
        for batch in [*batches, changed]:
            await write(first, "t", batch)
            await asyncio.gather(*index.tasks)  # applied after the commit, before any search
        kept = [await index.vector_search("t", KIND, q, k=10) for q in [*queries, -vectors[0], vectors[2]]]
    second = memory_app(**settings)
    async with running(second):
        index = second.state.registry.services["memory"].index
        index.snapshot_dir = None  # load from the rows, not from the first app's snapshot
        loaded = [await index.vector_search("t", KIND, q, k=10) for q in [*queries, -vectors[0], vectors[2]]]
    assert [[h.id for h in hits] for hits in kept] == [[h.id for h in hits] for hits in loaded]
    assert kept[-2][0].id == "item-0" and "item-2" not in {h.id for hits in kept for h in hits}


async def test_deletes_and_updates_reach_both_searches(memory_app: Any) -> None:
    app = memory_app(sqlite_index={"exact_limit": 50, "ivf_lists": 4, "ivf_probes": 4})
    vectors = clustered(200)
    async with running(app):
        await write(app, "t", items(vectors))
        registry = app.state.registry
        index = registry.services["memory"].index
        target = vectors[5]
        assert (await index.vector_search("t", KIND, target, k=1))[0].id == "item-5"
        async with registry.db.write() as session:
            await index.delete(session, "t", KIND, ["item-5"])
        assert "item-5" not in {h.id for h in await index.vector_search("t", KIND, target, k=10)}
        assert await index.text_search("t", KIND, "number 5", k=200) != []
        assert "item-5" not in {h.id for h in await index.text_search("t", KIND, "5", k=200)}
        moved = IndexItem(id="item-6", vector=-vectors[6], text="renamed entirely", attrs={})
        await write(app, "t", [moved])
        assert (await index.vector_search("t", KIND, -vectors[6], k=1))[0].id == "item-6"
        assert [h.id for h in await index.text_search("t", KIND, "renamed", k=5)] == ["item-6"]
        assert await index.count("t", KIND) == 199


async def test_a_large_write_with_repeated_ids_keeps_the_last_text(memory_app: Any, backend: str) -> None:
    """A write of more rows than one statement takes, an id given twice in it (within and across
    statements) and rewritten later: the last text of each id is what keyword search finds."""
    app = memory_app()
    batch = items(clustered(1200))
    repeated = [
        IndexItem(id=item.id, vector=item.vector, text="replaced entirely", attrs=item.attrs)
        for item in (batch[3], batch[900])
    ]
    async with running(app):
        registry = app.state.registry
        index = registry.services["memory"].index
        await write(app, "t", [*batch[:10], repeated[0], *batch[10:], repeated[1]])
        assert await index.count("t", KIND) == 1200
        assert {h.id for h in await index.text_search("t", KIND, "replaced", k=10)} == {"item-3", "item-900"}
        assert await index.text_search("t", KIND, "number 3", k=1200) != []
        assert "item-3" not in {h.id for h in await index.text_search("t", KIND, "3", k=1200)}
        await write(app, "t", [IndexItem(id="item-3", vector=batch[3].vector, text="again anew", attrs={})])
        assert [h.id for h in await index.text_search("t", KIND, "anew", k=5)] == ["item-3"]
        assert [h.id for h in await index.text_search("t", KIND, "replaced", k=5)] == ["item-900"]
        if backend == "sqlite":
            async with registry.db.write() as session:
                await session.execute(text("INSERT INTO memidx_fts(memidx_fts) VALUES ('integrity-check')"))


async def test_keyword_search_ranks_and_filters(memory_app: Any) -> None:
    app = memory_app()
    async with running(app):
        await write(app, "t", items(clustered(30)))
        index = app.state.registry.services["memory"].index
        blue = await index.text_search("t", KIND, "blue", k=100)
        assert len(blue) == 10 and all(int(h.id.split("-")[1]) % 3 == 2 for h in blue)
        filtered = await index.text_search(
            "t", KIND, "blue", k=100, filters=IndexFilters(metadata={"parity": 1})
        )
        assert {h.id for h in filtered} == {h.id for h in blue if int(h.id.split("-")[1]) % 2 == 1}
        assert await index.text_search("t", KIND, '" OR * NEAR(', k=5) == []
        assert await index.text_search("t", KIND, "the and of", k=5) == []


async def test_keyword_search_finds_a_tenants_items_outranked_by_anothers(memory_app: Any) -> None:
    """The best matches of the shared full-text index are looked at first; when they belong to
    another tenant (or kind), the tenant's own matches are still found, best first."""
    app = memory_app()
    async with running(app):
        await write(
            app, "big", [IndexItem(id=f"b{i}", vector=None, text="blue blue blue") for i in range(60)]
        )
        await write(app, "small", items(clustered(30)))
        index = app.state.registry.services["memory"].index
        found = await index.text_search("small", KIND, "blue", k=3)
        assert len(found) == 3 and all(int(h.id.split("-")[1]) % 3 == 2 for h in found)
        assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)
        assert len(await index.text_search("big", KIND, "blue", k=5)) == 5
        assert await index.text_search("small", "other-kind", "blue", k=5) == []


async def test_keyword_search_drops_words_too_common_to_rank(memory_app: Any) -> None:
    app = memory_app(sqlite_index={"common_term_docs": 25}, pgvector_index={"common_term_docs": 25})
    async with running(app):
        await write(app, "t", items(clustered(30)))
        index = app.state.registry.services["memory"].index
        # "colour" is in all 30 items (at the cap), "blue" in 10: only "blue" ranks.
        both = await index.text_search("t", KIND, "colour blue", k=100)
        assert {h.id for h in both} == {h.id for h in await index.text_search("t", KIND, "blue", k=100)}
        assert len(await index.text_search("t", KIND, "colour", k=100)) == 30  # alone, it still counts


async def test_other_processes_writes_are_found_at_once(memory_app: Any) -> None:
    settings = {"sqlite_index": {"exact_limit": 100, "ivf_lists": 4, "ivf_probes": 4}}
    vectors = clustered(300)
    first, second = memory_app(**settings), memory_app(**settings)
    async with running(first), running(second):
        await write(first, "t", items(vectors[:200]))
        reader = second.state.registry.services["memory"].index
        assert (await reader.vector_search("t", KIND, vectors[10], k=1))[0].id == "item-10"
        await write(first, "t", items(vectors[200:], 200))
        assert (await reader.vector_search("t", KIND, vectors[250], k=1))[0].id == "item-250"
        assert [h.id for h in await reader.text_search("t", KIND, "number 250", k=1)] == ["item-250"]


async def test_in_memory_partitions_restart_from_snapshots(memory_app: Any, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("in-memory partitions and their snapshots are the embedded backend's")
    settings = {"sqlite_index": {"exact_limit": 100, "ivf_lists": 4, "ivf_probes": 4}}
    vectors = clustered(300)
    first = memory_app(**settings)
    async with running(first):
        data_dir = first.state.registry.db.path.parent
        await write(first, "t", items(vectors))
        index = first.state.registry.services["memory"].index
        assert (await index.vector_search("t", KIND, vectors[250], k=1))[0].id == "item-250"
    snapshots = list(data_dir.glob("*.index/*.faiss"))
    assert snapshots, "an IVF partition is saved at shutdown"
    again = memory_app(**settings)
    async with running(again):
        index = again.state.registry.services["memory"].index
        await write(again, "t", items(vectors[:1] * -1, 300))
        assert (await index.vector_search("t", KIND, vectors[250], k=1))[0].id == "item-250"
        assert (await index.vector_search("t", KIND, -vectors[0], k=1))[0].id == "item-300"
        assert index.partitions[("t", KIND)].approximate


async def test_a_database_in_memory_is_searched_too(memory_app: Any, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("an in-memory database is an SQLite feature")
    async with running(memory_app(database_url="sqlite://")) as client:
        await client.post("/api/v1/episodes", json={"content": "the lighthouse at dawn"})
        found = await client.post("/api/v1/episodes/recall", json={"query": "lighthouse"})
        assert [i["episode"]["content"] for i in found.json()["items"]] == ["the lighthouse at dawn"]
        keyword = await client.post("/api/v1/episodes/recall", json={"query": "dawn", "mode": "keyword"})
        assert len(keyword.json()["items"]) == 1
