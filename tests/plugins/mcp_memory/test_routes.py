"""The memory routes on seeded data with known structure: stats, MCP servers, similarity,
store, clustering, similar sessions, compression, cleanup, each confined to the caller's
tenant, with bad input refused in the error envelope."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from mnemogate.core.testing import running

LISBON = [
    "the Lisbon trip needs a hotel near the river",
    "for the Lisbon trip book a hotel with a view",
    "the Lisbon trip hotel should be close to the tram",
]
DATABASE = [
    "the database migration failed on the index step",
    "retry the database migration after fixing the index",
    "database migration index rebuilt successfully",
]


async def add(client: httpx.AsyncClient, episodes: list[dict[str, Any]], **kw: Any) -> list[str]:
    response = await client.post("/api/v1/episodes", json={"episodes": episodes}, **kw)
    assert response.status_code == 201, response.text
    return [e["id"] for e in response.json()["items"]]


def tool(server: str, name: str, outcome: str = "success", session: str = "s") -> dict[str, Any]:
    return {
        "content": f"{server}/{name}(...) -> {outcome}",
        "session_id": session,
        "role": "tool",
        "outcome": outcome,
        "metadata": {"source": "mcp", "server": server, "tool": name},
    }


async def test_stats_servers_and_advanced_stats(memory_routes_app: Any, create_key: Any) -> None:
    app = memory_routes_app()
    async with running(app) as client:
        await add(client, [tool("json-query", "query_json"), tool("json-query", "infer_schema", "failure")])
        await add(
            client, [tool("pruner", "prune_messages", session="t"), {"content": LISBON[0], "session_id": "t"}]
        )
        await add(client, [{"content": LISBON[0], "session_id": "u"}])
        stored = await client.post(
            "/api/memory/store",
            json={"content": "Ana prefers window seats", "memory_type": "semantic", "name": "Ana"},
        )
        await client.post("/api/v1/episodes/recall", json={"query": "Lisbon hotel river", "k": 1})
        stats = (await client.get("/api/memory/stats")).json()
        servers = (await client.get("/api/memory/servers")).json()["items"]
        every = (await client.get("/api/memory/all-servers", params={"limit": 100})).json()["items"]
        advanced = (await client.get("/api/memory/stats/advanced")).json()
        other = {"Authorization": f"Bearer {await create_key(app, tenant='globex')}"}
        theirs = (await client.get("/api/memory/stats", headers=other)).json()
    assert stored.status_code == 201 and stored.json()["item"]["name"] == "Ana"
    assert stats["total"] == 6 and stats["by_type"]["episodic"]["items"] == 5
    assert stats["by_type"]["semantic"]["items"] == 1
    assert (
        stats["by_type"]["episodic"]["never_recalled"] == 4 and stats["by_type"]["episodic"]["accesses"] == 1
    )
    assert stats["sessions"] == 3 and stats["captured"] == {"gateway": 0, "mcp": 3, "other": 2}
    assert [(s["server"], s["memories"], s["failures"]) for s in servers] == [
        ("json-query", 2, 1),
        ("pruner", 1, 0),
    ]
    assert servers[0]["tools"] == {"query_json": 1, "infer_schema": 1} and servers[0]["configured"] is True
    assert {s["server"] for s in every} == {
        "context-compression",
        "fast-filesystem",
        "json-query",
        "memory",
        "pruner",
        "sequential-thinking",
    }
    assert next(s for s in every if s["server"] == "fast-filesystem")["memories"] == 0
    assert advanced["total"] == 6 and advanced["age"]["episodic"]["buckets"] == {"<1h": 5}
    assert advanced["access"]["episodic"]["buckets"] == {"0": 4, "1": 1}
    # The two identical Lisbon episodes are near-duplicates of each other: 2 of 5.
    assert advanced["duplication_ratio"] == 0.4 and advanced["clusters"] >= 2
    assert advanced["decay"] == {"archived": 0, "never_recalled": 5, "due_for_archive": 0}
    assert theirs["total"] == 0 and theirs["by_type"] == {}


async def test_similarity_of_texts_and_against_memories(memory_routes_app: Any) -> None:
    async with running(memory_routes_app()) as client:
        ids = await add(client, [{"content": c} for c in LISBON + DATABASE])
        same = await client.post("/api/memory/similarity", json={"text": LISBON[0], "other": LISBON[0]})
        near = await client.post("/api/memory/similarity", json={"text": LISBON[0], "other": LISBON[1]})
        far = await client.post("/api/memory/similarity", json={"text": LISBON[0], "other": DATABASE[0]})
        found = await client.post(
            "/api/memory/similarity", json={"text": "database migration index", "types": ["episodic"], "k": 3}
        )
        bad = await client.post("/api/memory/similarity", json={"other": "x"})
    assert same.json()["similarity"] == 1.0
    assert near.json()["similarity"] > far.json()["similarity"]
    assert {m["id"] for m in found.json()["matches"]} == set(ids[3:])
    assert bad.status_code == 422 and "error" in bad.json()


async def test_clusters_of_a_session_and_similar_sessions(memory_routes_app: Any) -> None:
    async with running(memory_routes_app()) as client:
        lisbon = await add(client, [{"content": c, "session_id": "mixed"} for c in LISBON])
        database = await add(client, [{"content": c, "session_id": "mixed"} for c in DATABASE])
        await add(client, [{"content": c, "session_id": "travel"} for c in LISBON[:2]])
        await add(client, [{"content": c, "session_id": "ops"} for c in DATABASE[:2]])
        await add(client, [{"content": LISBON[2], "session_id": "trip"}])
        clusters = (await client.post("/api/memory/cluster/mixed")).json()
        similar = (await client.get("/api/memory/similar/trip")).json()
        missing = await client.get("/api/memory/similar/nothing-here")
    assert clusters["episodes"] == 6
    assert sorted(sorted(c["episode_ids"]) for c in clusters["clusters"]) == sorted(
        [sorted(lisbon), sorted(database)]
    )
    assert any("lisbon" in c["keywords"] for c in clusters["clusters"])
    ranked = [s["session_id"] for s in similar["items"]]
    assert ranked.index("travel") < ranked.index("ops")
    assert missing.status_code == 404


async def test_compress_merges_duplicates_and_summarises_clusters(memory_routes_app: Any) -> None:
    async with running(memory_routes_app()) as client:
        first, twin = await add(
            client, [{"content": DATABASE[0], "importance": 0.2}, {"content": DATABASE[0], "importance": 0.9}]
        )
        lisbon = await add(client, [{"content": c} for c in LISBON])
        dry = (await client.post("/api/memory/compress", json={"min_cluster_size": 3})).json()
        unchanged = (await client.get("/api/v1/episodes")).json()["items"]
        done = (
            await client.post("/api/memory/compress", json={"min_cluster_size": 3, "dry_run": False})
        ).json()
        kept = (await client.get(f"/api/v1/episodes/{twin}")).json()
        gone = await client.get(f"/api/v1/episodes/{first}")
        recalled = (
            await client.post("/api/v1/episodes/recall", json={"query": "Lisbon trip hotel", "k": 5})
        ).json()
    assert dry["dry_run"] and len(unchanged) == 5
    # The more important of the two is kept.
    assert [(m["kept"], m["merged"]) for m in dry["merges"]] == [(twin, [first])]
    (summary,) = dry["summaries"]
    assert sorted(summary["members"]) == sorted(lisbon) and summary["summary_id"] is None
    assert done["removed"] == 1 and done["archived"] == 3
    assert kept["importance"] == 0.9 and kept["metadata"]["merged"] == [first]
    assert gone.status_code == 404
    # The cluster's members are archived behind their summary, which recall now finds instead.
    found = [r["episode"]["id"] for r in recalled["items"]]
    assert found[0] == done["summaries"][0]["summary_id"] and not set(found) & set(lisbon)


async def test_cleanup_of_expired_duplicate_and_orphaned_episodes(memory_routes_app: Any) -> None:
    async with running(memory_routes_app()) as client:
        session = (await client.post("/api/sessions", json={"name": "live"})).json()["id"]
        gone_session = str(uuid.uuid4())
        expired, fresh, live, orphan = await add(
            client,
            [
                {"content": "old news", "metadata": {"expires_at": "2020-01-01T00:00:00Z"}},
                {"content": "fresh", "session_id": "x", "metadata": {"expires_at": "2999-01-01T00:00:00Z"}},
                {"content": "kept", "session_id": session, "metadata": {"source": "gateway"}},
                {"content": "lost", "session_id": gone_session, "metadata": {"source": "gateway"}},
            ],
        )
        (repeat,) = await add(client, [{"content": "fresh", "session_id": "x"}])
        dry = (await client.post("/api/memory/cleanup", json={})).json()
        done = (await client.post("/api/memory/cleanup", json={"dry_run": False})).json()
        left = {e["id"] for e in (await client.get("/api/v1/episodes")).json()["items"]}
        nothing = await client.post(
            "/api/memory/cleanup", json={"expired": False, "duplicates": False, "orphaned": False}
        )
    assert dry["expired"] == [expired] and dry["duplicates"] == [repeat] and dry["orphaned"] == [orphan]
    assert dry["removed"] == 0 and done["removed"] == 3
    assert left == {fresh, live}
    assert nothing.status_code == 400 and nothing.json()["error"]["code"] == "bad_request"


async def test_session_memory_is_the_callers_own(memory_routes_app: Any, create_key: Any) -> None:
    app = memory_routes_app()
    async with running(app) as client:
        acme = {"Authorization": f"Bearer {await create_key(app, tenant='acme')}"}
        globex = {"Authorization": f"Bearer {await create_key(app, tenant='globex')}"}
        await add(
            client,
            [
                {"content": c, "session_id": "plan", "occurred_at": f"2026-11-20T10:00:0{n}Z"}
                for n, c in enumerate(LISBON)
            ],
            headers=acme,
        )
        ours = (await client.get("/api/sessions/plan/memory", params={"limit": 2}, headers=acme)).json()
        rest = (
            await client.get(
                "/api/sessions/plan/memory", params={"cursor": ours["next_cursor"]}, headers=acme
            )
        ).json()
        theirs = (await client.get("/api/sessions/plan/memory", headers=globex)).json()
        promote = await client.post("/api/memory/promote-patterns/plan", headers=globex)
    assert [e["content"] for e in ours["items"] + rest["items"]] == LISBON[::-1]
    assert ours["injections"] == [] and ours["session_id"] == "plan"
    assert theirs["items"] == [] and promote.status_code == 404
