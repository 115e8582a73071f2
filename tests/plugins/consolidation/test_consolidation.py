"""Consolidation on seeded data with known structure: three topics come out as three clusters,
recurring names become entities with relations, a tool sequence that keeps succeeding becomes
a skill (one interrupted by a failure does not), runs are bounded and resume, what is never
recalled is archived (kept, no longer recalled), progress reaches /ws/learning, runs happen on
a schedule, and each tenant's run sees only its own episodes."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from mnemogate.core.testing import running, served

TOPICS = {
    "lisbon": [
        "Ana says the Lisbon trip needs a hotel near the river",
        "for the Lisbon trip Ana wants a hotel with a view",
        "the Lisbon trip hotel should be close to the tram, says Bruno",
    ],
    "migration": [
        "the database migration failed on the index step",
        "retry the database migration after fixing the index",
        "database migration index rebuilt successfully",
    ],
    "party": [
        "birthday party cake order for Saturday",
        "the birthday party needs balloons and cake",
        "send birthday party invitations with the cake photo",
    ],
}


SECONDS = itertools.count()


def _second(n: int) -> str:
    return f"2026-11-20T{10 + n // 3600 % 10:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"


def tool_episode(session: str, tool: str, outcome: str = "success") -> dict[str, Any]:
    return {
        "occurred_at": _second(next(SECONDS)),
        "content": f"json-query/{tool}(...) -> {outcome}",
        "session_id": session,
        "actor": f"json-query/{tool}",
        "role": "tool",
        "outcome": outcome,
        "metadata": {"source": "mcp", "server": "json-query", "tool": tool},
    }


async def add(client: httpx.AsyncClient, episodes: list[dict[str, Any]], **kw: Any) -> list[str]:
    response = await client.post("/api/v1/episodes", json={"episodes": episodes}, **kw)
    assert response.status_code == 201, response.text
    return [e["id"] for e in response.json()["items"]]


async def run(client: httpx.AsyncClient, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/consolidation/run", json=body, **kw)
    assert response.status_code == 200, response.text
    return response.json()


async def test_topics_entities_and_relations_from_seeded_episodes(consolidation_app: Any) -> None:
    async with running(consolidation_app()) as client:
        ids = {
            topic: await add(client, [{"content": c, "actor": "user"} for c in texts])
            for topic, texts in TOPICS.items()
        }
        result = await run(client)
        entities = (await client.get("/api/v1/entities", params={"limit": 100})).json()["items"]
        topics = (await client.get("/api/v1/entities", params={"type": "topic"})).json()["items"]
        ana = next(e for e in entities if e["name"] == "Ana")
        related = (await client.get(f"/api/v1/entities/{ana['id']}/relations")).json()["items"]
        again = await run(client)
        status = (await client.get("/api/v1/consolidation/status")).json()
    assert result["episodes"] == 9 and result["clusters"] == 3
    grouped = {frozenset(t["attributes"]["keywords"]): set(t["metadata"]["episode_ids"]) for t in topics}
    assert sorted(map(sorted, grouped.values())) == sorted(sorted(v) for v in ids.values())
    assert {t["label"] for t in result["topics"]} == {t["name"] for t in topics}
    assert any("lisbon" in t["attributes"]["keywords"] for t in topics)
    # Ana is named in two episodes, Lisbon in three, Bruno once (not enough to be an entity).
    assert set(result["entities_created"]) == {"Ana", "Lisbon"}
    assert {e["name"] for e in entities if e["type"] == "entity"} == {"Ana", "Lisbon"}
    assert ana["attributes"] == {"mentions": 2} and "Ana" in ana["description"]
    assert [r["type"] for r in related] == ["related_to"] and result["relations_created"] == 1
    assert again["episodes"] == 0 and again["entities_created"] == [] and not again["more"]
    assert status["tenant"]["runs"] == 2 and status["tenant"]["watermark"] is not None
    assert status["running"] is False and status["scheduled"] is False


async def test_a_repeated_successful_tool_sequence_becomes_a_skill(consolidation_app: Any) -> None:
    async with running(consolidation_app()) as client:
        await add(
            client,
            [
                tool_episode("s1", "query_json"),
                tool_episode("s1", "infer_schema"),
                tool_episode("s2", "query_json"),
                tool_episode("s2", "infer_schema"),
                tool_episode("s3", "query_json"),
                tool_episode("s3", "stream_query", "failure"),
                tool_episode("s3", "stream_query", "failure"),
            ],
        )
        result = await run(client)
        skills = (await client.get("/api/v1/skills")).json()["items"]
        rerun = await client.post("/api/v1/consolidation/run")
    assert len(result["skills_created"]) == 1, result
    (skill,) = skills
    assert skill["name"] == "json-query/query_json -> json-query/infer_schema"
    assert skill["steps"] == ["call json-query/query_json", "call json-query/infer_schema"]
    assert skill["metadata"]["support"] == 2 and "learned" in skill["tags"]
    assert rerun.json()["skills_created"] == []


async def test_runs_are_bounded_and_resume_where_they_stopped(consolidation_app: Any) -> None:
    async with running(consolidation_app()) as client:
        await add(client, [{"content": f"note number {n}"} for n in range(5)])
        first = await run(client, {"max_episodes": 2})
        status = (await client.get("/api/v1/consolidation/status")).json()
        second = await run(client, {"max_episodes": 2})
        third = await run(client, {"max_episodes": 2})
        await add(client, [{"content": "a later note"}])
        fourth = await run(client, {"max_episodes": 2})
        bad = await client.post("/api/v1/consolidation/run", json={"max_episodes": "2"})
    assert [r["episodes"] for r in (first, second, third, fourth)] == [2, 2, 1, 1]
    assert [r["more"] for r in (first, second, third, fourth)] == [True, True, False, False]
    assert status["tenant"]["pass_in_progress"] is True
    assert bad.status_code == 422 and "error" in bad.json()


async def test_memories_never_recalled_are_archived_not_deleted(consolidation_app: Any) -> None:
    app = consolidation_app(consolidation={"archive_after_days": 0.000001})
    async with running(app) as client:
        kept, forgotten = await add(
            client, [{"content": "the walrus sings at dawn"}, {"content": "the heron sleeps at noon"}]
        )
        recalled = await client.post("/api/v1/episodes/recall", json={"query": "walrus sings", "k": 1})
        assert recalled.json()["items"][0]["episode"]["id"] == kept
        await asyncio.sleep(0.2)
        result = await run(client)
        heron = await client.post("/api/v1/episodes/recall", json={"query": "heron sleeps at noon", "k": 5})
        still_there = await client.get(f"/api/v1/episodes/{forgotten}")
    assert result["archived"] == 1
    assert forgotten not in [r["episode"]["id"] for r in heron.json()["items"]]
    assert still_there.status_code == 200


async def test_progress_and_results_reach_ws_learning(consolidation_app: Any) -> None:
    app = consolidation_app()
    async with served(app) as base, httpx.AsyncClient(base_url=base) as client:
        await add(client, [{"content": c} for c in TOPICS["party"]])
        async with connect(base.replace("http", "ws") + "/ws/learning") as socket:
            assert orjson.loads(await socket.recv())["type"] == "subscribed"
            result = await run(client)
            events = [orjson.loads(await asyncio.wait_for(socket.recv(), 5)) for _ in range(5)]
    assert [e["type"] for e in events] == [
        "consolidation.started",
        "consolidation.progress",
        "consolidation.progress",
        "consolidation.progress",
        "consolidation.finished",
    ]
    assert [e["data"]["step"] for e in events[1:4]] == ["topics", "entities", "skills"]
    assert events[0]["data"]["episodes"] == 3 and events[-1]["data"]["run_id"] == result["run_id"]


async def test_scheduled_runs_consolidate_tenants_with_new_episodes(consolidation_app: Any) -> None:
    async with running(consolidation_app(consolidation={"interval_seconds": 0.1})) as client:
        await add(client, [{"content": c, "actor": "user"} for c in TOPICS["lisbon"]])
        for _ in range(100):
            status = (await client.get("/api/v1/consolidation/status")).json()
            if status["tenant"]["runs"]:
                break
            await asyncio.sleep(0.05)
    assert status["scheduled"] is True and status["tenant"]["runs"] >= 1
    assert status["tenant"]["last_result"]["episodes"] == 3


async def test_a_run_sees_only_the_callers_tenant(consolidation_app: Any, create_key: Any) -> None:
    app = consolidation_app()
    async with running(app) as client:
        acme = {"Authorization": f"Bearer {await create_key(app, tenant='acme')}"}
        globex = {"Authorization": f"Bearer {await create_key(app, tenant='globex')}"}
        await add(client, [{"content": c, "actor": "user"} for c in TOPICS["lisbon"]], headers=acme)
        theirs = await run(client, headers=globex)
        ours = await run(client, headers=acme)
        globex_entities = (await client.get("/api/v1/entities", headers=globex)).json()["items"]
    assert theirs["episodes"] == 0 and ours["episodes"] == 3
    assert globex_entities == []
