"""Episodic memory over HTTP: the seven routes, recall with explain, feedback, reinforcement,
events on /ws/memory, and clean 4xx answers with nothing half-written."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.testing import running, served

EPISODES = [
    {"content": "We planned the hiking trip to the Alps for July", "actor": "Ana", "session_id": "s1"},
    {"content": "The quarterly budget review is due on Friday", "actor": "Ben", "session_id": "s2"},
    {"content": "Ana adopted a grey kitten named Pixel", "actor": "Ana", "session_id": "s1", "user_id": "u1"},
    {"content": "Deploying the API failed because the database migration timed out", "session_id": "s3"},
]


async def add_all(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.post("/api/v1/episodes", json={"episodes": EPISODES})
    assert response.status_code == 201, response.text
    return response.json()["items"]


async def test_create_get_update_delete(memory_client: Any) -> None:
    async with memory_client() as client:
        created = await client.post(
            "/api/v1/episodes",
            json={
                "content": "Met Carla at the conference",
                "occurred_at": "2024-05-08T13:56:00Z",
                "actor": "Dev",
                "role": "user",
                "importance": 0.9,
                "metadata": {"source": "chat"},
            },
        )
        assert created.status_code == 201
        episode = created.json()
        assert episode["occurred_at"] == "2024-05-08T13:56:00Z"
        assert episode["importance"] == 0.9 and episode["metadata"] == {"source": "chat"}
        fetched = await client.get(f"/api/v1/episodes/{episode['id']}")
        assert fetched.json()["content"] == "Met Carla at the conference"

        changed = await client.put(
            f"/api/v1/episodes/{episode['id']}", json={"content": "Met Carla in Berlin"}
        )
        assert changed.status_code == 200 and changed.json()["content"] == "Met Carla in Berlin"
        assert changed.json()["actor"] == "Dev"
        found = await client.post("/api/v1/episodes/recall", json={"query": "Berlin", "mode": "keyword"})
        assert [i["episode"]["id"] for i in found.json()["items"]] == [episode["id"]]
        stale = await client.post("/api/v1/episodes/recall", json={"query": "conference", "mode": "keyword"})
        assert stale.json()["items"] == []

        assert (await client.delete(f"/api/v1/episodes/{episode['id']}")).status_code == 204
        assert (await client.get(f"/api/v1/episodes/{episode['id']}")).status_code == 404
        assert (await client.delete(f"/api/v1/episodes/{episode['id']}")).status_code == 404
        gone = await client.post("/api/v1/episodes/recall", json={"query": "Carla Berlin"})
        assert gone.json()["items"] == []


async def test_recall_after_a_delete(memory_client: Any) -> None:
    """A recall catches the in-memory index up with a deletion that came alone (no vectors)."""
    async with memory_client() as client:
        episodes = await add_all(client)
        assert (await client.post("/api/v1/episodes/recall", json={"query": "kitten"})).status_code == 200
        assert (await client.delete(f"/api/v1/episodes/{episodes[2]['id']}")).status_code == 204
        found = await client.post("/api/v1/episodes/recall", json={"query": "kitten", "mode": "vector"})
        assert found.status_code == 200
        assert episodes[2]["id"] not in [i["episode"]["id"] for i in found.json()["items"]]


async def test_list_filters_and_pages(memory_client: Any) -> None:
    async with memory_client() as client:
        await add_all(client)
        by_actor = await client.get("/api/v1/episodes", params={"actor": "Ana"})
        assert {e["content"] for e in by_actor.json()["items"]} == {
            EPISODES[0]["content"],
            EPISODES[2]["content"],
        }
        by_user = await client.get("/api/v1/episodes", params={"user_id": "u1"})
        assert len(by_user.json()["items"]) == 1
        seen, cursor = [], None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/episodes", params=params)).json()
            seen += [e["id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 4
        assert (await client.get("/api/v1/episodes", params={"cursor": "garbage"})).status_code == 400


async def test_recall_explains_filters_and_reinforces(memory_client: Any) -> None:
    async with memory_client() as client:
        stored = await add_all(client)
        kitten = stored[2]["id"]
        response = await client.post(
            "/api/v1/episodes/recall", json={"query": "kitten Pixel", "k": 2, "explain": True}
        )
        items = response.json()["items"]
        assert items[0]["episode"]["id"] == kitten
        parts = items[0]["explain"]
        for part in ("relevance", "vector", "keyword", "recency", "importance", "activation", "score"):
            assert part in parts
        assert abs(parts["score"] - items[0]["score"]) < 1e-9
        plain = await client.post("/api/v1/episodes/recall", json={"query": "kitten Pixel", "k": 1})
        assert plain.json()["items"][0]["explain"] is None
        assert (await client.get(f"/api/v1/episodes/{kitten}")).json()["access_count"] == 2

        in_session = await client.post(
            "/api/v1/episodes/recall", json={"query": "kitten", "session_id": "s2"}
        )
        assert [i["episode"]["session_id"] for i in in_session.json()["items"]] == ["s2"]
        by_meta = await client.post("/api/v1/episodes/recall", json={"query": "kitten", "metadata": {"x": 1}})
        assert by_meta.json()["items"] == []
        later = await client.post(
            "/api/v1/episodes/recall", json={"query": "kitten", "since": "2999-01-01T00:00:00Z"}
        )
        assert later.json()["items"] == []


async def test_feedback_changes_later_recall(memory_client: Any) -> None:
    async with memory_client(memory={"embedder": "hashing", "importance_weight": 1.0}) as client:
        first = (await client.post("/api/v1/episodes", json={"content": "backup job ran at night"})).json()
        second = (await client.post("/api/v1/episodes", json={"content": "backup job ran at noon"})).json()
        query = {"query": "backup job", "explain": True}
        await client.post(f"/api/v1/episodes/{first['id']}/feedback", json={"importance": 0.1})
        before = (await client.post("/api/v1/episodes/recall", json=query)).json()["items"]
        assert before[0]["episode"]["id"] == second["id"]
        marked = await client.post(
            f"/api/v1/episodes/{first['id']}/feedback", json={"outcome": "success", "importance": 1.0}
        )
        assert marked.json()["outcome"] == "success" and marked.json()["importance"] == 1.0
        after = (await client.post("/api/v1/episodes/recall", json=query)).json()["items"]
        assert after[0]["episode"]["id"] == first["id"]
        assert after[0]["explain"]["importance"] == 1.0
        nudged = await client.post(f"/api/v1/episodes/{first['id']}/feedback", json={"helpful": False})
        assert abs(nudged.json()["importance"] - 0.9) < 1e-9
        empty = await client.post(f"/api/v1/episodes/{first['id']}/feedback", json={})
        assert empty.status_code == 400


async def test_bad_input_is_refused_whole(memory_client: Any) -> None:
    async with memory_client() as client:
        batch = {"episodes": [{"content": "fine"}, {"content": ""}]}
        refused = await client.post("/api/v1/episodes", json=batch)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_error"
        assert (await client.get("/api/v1/episodes")).json()["items"] == []
        naive = await client.post(
            "/api/v1/episodes", json={"content": "x", "occurred_at": "2024-01-01T00:00:00"}
        )
        assert naive.status_code == 422
        unknown = await client.post("/api/v1/episodes", json={"content": "x", "colour": "red"})
        assert unknown.status_code == 422
        assert (await client.get("/api/v1/episodes/not-a-uuid")).status_code == 404  # ids are UUIDs
        too_many = await client.post("/api/v1/episodes/recall", json={"query": "x", "k": 1000})
        assert too_many.status_code == 422
        meta = await client.post("/api/v1/episodes/recall", json={"query": "x", "metadata": {"a": [1]}})
        assert meta.status_code == 422


async def test_text_the_database_cannot_store_is_a_400_and_writes_nothing(
    memory_client: Any, backend: str
) -> None:
    """PostgreSQL stores no NUL character in text or JSON: a clear 400, nothing half-written.
    SQLite stores it, and gives it back unchanged."""
    async with memory_client() as client:
        batch = {"episodes": [{"content": "fine"}, {"content": "a\u0000b"}]}
        episode = await client.post("/api/v1/episodes", json=batch)
        in_metadata = await client.post(
            "/api/v1/episodes", json={"content": "x", "metadata": {"k": "\u0000"}}
        )
        entity = await client.post("/api/v1/entities", json={"name": "n\u0000"})
        listed = (await client.get("/api/v1/episodes")).json()["items"]
    if backend == "postgresql":
        for refused in (episode, in_metadata, entity):
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["code"] == "unstorable_text"
        assert listed == []
    else:
        assert [e["content"] for e in episode.json()["items"]] == ["fine", "a\u0000b"]
        assert in_metadata.status_code == entity.status_code == 201
        assert len(listed) == 3


async def test_writes_and_recalls_are_announced_on_ws_memory(memory_app: Any) -> None:
    async with (
        served(memory_app()) as base,
        httpx.AsyncClient(base_url=base) as client,
        connect(base.replace("http", "ws") + "/ws/memory") as ws,
    ):
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        created = (await client.post("/api/v1/episodes", json={"content": "an event"})).json()
        await client.put(f"/api/v1/episodes/{created['id']}", json={"importance": 0.7})
        await client.post("/api/v1/episodes/recall", json={"query": "event"})
        await client.delete(f"/api/v1/episodes/{created['id']}")
        seen = []
        for _ in range(4):
            event = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            assert event["data"]["memory_type"] == "episodic"
            assert event["data"]["ids"] == [created["id"]]
            seen.append(event["type"])
        assert seen == ["created", "updated", "recalled", "deleted"]


@pytest.mark.postgres
async def test_without_an_index_for_the_database_memory_answers_503(
    make_client: Any, postgres_url: str
) -> None:
    from pydantic import SecretStr

    async with make_client(database_url=SecretStr(postgres_url), disabled=["pgvector_index"]) as client:
        assert (await client.get("/api/v1/health/ready")).status_code == 200
        refused = await client.post("/api/v1/episodes", json={"content": "x"})
        assert refused.status_code == 503 and "no storage backend serves postgresql" in refused.text
        assert (await client.get("/api/v1/episodes")).json()["items"] == []


class EventRecorder:
    """A plugin reacting to memory writes through the memory_event hook."""

    plugin_name = "event_recorder"

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, list[str]]] = []

    @hookimpl
    async def memory_event(self, event: Any) -> None:
        self.events.append((event.tenant, event.memory_type, event.action, list(event.ids)))


async def test_memory_event_hooks_see_every_committed_write(memory_app: Any) -> None:
    recorder = EventRecorder()
    async with running(memory_app(extra_plugins=[recorder])) as client:
        episode = (await client.post("/api/v1/episodes", json={"content": "hooked"})).json()
        skill = (await client.post("/api/v1/skills", json={"name": "hook skill"})).json()
        await client.delete(f"/api/v1/episodes/{episode['id']}")
    assert recorder.events == [
        ("default", "episodic", "created", [episode["id"]]),
        ("default", "procedural", "created", [skill["id"]]),
        ("default", "episodic", "deleted", [episode["id"]]),
    ]


async def test_weighted_score_fusion(memory_client: Any) -> None:
    tables = {"memory": {"embedder": "hashing", "fusion": "scores", "keyword_weight": 0.0}}
    async with memory_client(**tables) as client:
        stored = await add_all(client)
        found = await client.post("/api/v1/episodes/recall", json={"query": "grey kitten", "explain": True})
        best = found.json()["items"][0]
        assert best["episode"]["id"] == stored[2]["id"]
        # With keyword weight 0 the relevance is the vector score relative to the best one.
        assert best["explain"]["relevance"] == 1.0 and "keyword" in best["explain"]
