"""The visualization API over real memories written through the public API: the laid-out
graph (cached until a write), the embedding projection, a traced spreading-activation run, the
learning and usage time series, filters and tenants, the live /ws/viz feed, and bad input."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from websockets.asyncio.client import connect

from mnemogate.core.testing import running, served
from mnemogate.plugins.visualization.layout import force_layout, pca_3d

Headers = dict[str, str] | None


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: Headers = None) -> Any:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def entity(client: httpx.AsyncClient, name: str, headers: Headers = None, **fields: Any) -> str:
    return (await post(client, "/api/v1/entities", {"name": name, **fields}, headers))["id"]


async def relate(
    client: httpx.AsyncClient, source: str, target: str, weight: float = 0.5, headers: Headers = None
) -> str:
    body = {"source_id": source, "target_id": target, "type": "knows", "weight": weight}
    return (await post(client, "/api/v1/entities/relations", body, headers))["id"]


async def episode(client: httpx.AsyncClient, content: str, **fields: Any) -> str:
    return (await post(client, "/api/v1/episodes", {"content": content, **fields}))["id"]


async def get(client: httpx.AsyncClient, path: str, headers: Headers = None, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def distance(a: dict[str, Any], b: dict[str, Any]) -> float:
    return math.dist((a["x"], a["y"], a["z"]), (b["x"], b["y"], b["z"]))


async def test_graph_lays_out_memories_and_follows_writes(viz_app: Any) -> None:
    app = viz_app()
    async with running(app) as client:
        # Two clusters of entities, related inside each cluster only.
        left = [await entity(client, f"left {i}", type="person") for i in range(6)]
        right = [await entity(client, f"right {i}", type="place") for i in range(6)]
        for cluster in (left, right):
            for a, b in zip(cluster, cluster[1:] + cluster[:1], strict=True):
                await relate(client, a, b, weight=0.9)
        first = await episode(client, "Dana moved the launch to Friday", session_id="standup", actor="Dana")
        second = await episode(client, "Sam agreed", session_id="standup", actor="Sam")
        deploy = (await post(client, "/api/v1/skills", {"name": "deploy", "steps": ["build", "ship"]}))["id"]

        graph = await get(client, "/api/v1/viz/graph")
        nodes = {node["id"]: node for node in graph["nodes"]}
        assert graph["counts"] == {"episodic": 2, "semantic": 12, "procedural": 1}
        assert graph["truncated"] is False and graph["cached"] is False and graph["layout_steps"] > 0
        assert nodes[left[0]]["memory_type"] == "semantic" and nodes[left[0]]["group"] == "person"
        assert nodes[first]["label"] == "Dana: Dana moved the launch to Friday"
        assert nodes[deploy]["group"] == "skill"
        assert all(math.isfinite(n[axis]) for n in nodes.values() for axis in "xyz")
        relations = [e for e in graph["edges"] if e["kind"] == "relation"]
        assert len(relations) == 12 and {e["weight"] for e in relations} == {0.9}
        assert [(e["source"], e["target"]) for e in graph["edges"] if e["kind"] == "session"] == [
            (first, second)
        ]
        # The layout keeps related memories together: within a cluster nearer than across.
        inside = np.mean(
            [distance(nodes[a], nodes[b]) for c in (left, right) for a in c for b in c if a != b]
        )
        across = np.mean([distance(nodes[a], nodes[b]) for a in left for b in right])
        assert inside < across / 1.5

        again = await get(client, "/api/v1/viz/graph")
        assert again["cached"] is True and again["nodes"] == graph["nodes"]
        newcomer = await entity(client, "newcomer")
        after = await get(client, "/api/v1/viz/graph")
        assert after["cached"] is False and newcomer in {n["id"] for n in after["nodes"]}

        # A restore replaces the database's contents: cached layouts go with them.
        await app.state.registry.host.broadcast("database_replaced", app=app)
        assert (await get(client, "/api/v1/viz/graph"))["cached"] is False

        limited = await get(client, "/api/v1/viz/graph", limit=5)
        assert len(limited["nodes"]) == 5 and limited["truncated"] is True
        assert newcomer in {n["id"] for n in limited["nodes"]}  # the newest are kept


async def test_filters_and_tenants(viz_app: Any, create_key: Any) -> None:
    app = viz_app()
    async with running(app) as client:
        acme = {"Authorization": f"Bearer {await create_key(app, tenant='acme')}"}
        other = {"Authorization": f"Bearer {await create_key(app, tenant='other')}"}
        await entity(client, "acme thing", headers=acme, user_id="ana")
        await entity(client, "ana's other", headers=acme, user_id="bo")
        await post(
            client,
            "/api/v1/episodes",
            {"content": "old", "session_id": "s1", "occurred_at": "2024-01-01T00:00:00Z"},
            acme,
        )
        await post(client, "/api/v1/episodes", {"content": "new", "session_id": "s2"}, acme)
        await entity(client, "secret of other", headers=other)

        labels = lambda g: sorted(n["label"] for n in g["nodes"])  # noqa: E731
        assert labels(await get(client, "/api/v1/viz/graph", acme)) == [
            "acme thing",
            "ana's other",
            "new",
            "old",
        ]
        assert labels(await get(client, "/api/v1/viz/graph", other)) == ["secret of other"]
        assert labels(await get(client, "/api/v1/viz/graph", acme, user_id="ana")) == ["acme thing"]
        assert labels(await get(client, "/api/v1/viz/graph", acme, session_id="s1")) == ["old"]
        assert labels(await get(client, "/api/v1/viz/graph", acme, kinds=["episodic"])) == ["new", "old"]
        recent = await get(client, "/api/v1/viz/graph", acme, since="2025-01-01T00:00:00Z")
        assert labels(recent) == ["acme thing", "ana's other", "new"]
        early = await get(client, "/api/v1/viz/graph", acme, until="2025-01-01T00:00:00Z", kinds=["episodic"])
        assert labels(early) == ["old"]


async def test_embedding_projection(viz_client: Any) -> None:
    async with viz_client() as client:
        for text in ("alpha beta", "alpha gamma", "delta epsilon", "zeta eta theta", "iota"):
            await episode(client, text)
        await entity(client, "kappa")
        projection = await get(client, "/api/v1/viz/embeddings")
        assert projection["method"] == "pca" and projection["dimensions"] == 384
        assert len(projection["points"]) == 6
        variance = projection["explained_variance"]
        assert variance == sorted(variance, reverse=True) and 0 < sum(variance) <= 1 + 1e-9
        only = await get(client, "/api/v1/viz/embeddings", kinds=["semantic"])
        assert [p["label"] for p in only["points"]] == ["kappa"]
        assert (only["points"][0]["x"], only["points"][0]["y"]) == (0, 0)  # one point has no spread


async def test_activation_trace_hop_by_hop(viz_client: Any) -> None:
    async with viz_client() as client:
        a, b, c, d = [await entity(client, name) for name in "abcd"]
        ab = await relate(client, a, b, weight=1.0)
        await relate(client, b, c, weight=1.0)
        await relate(client, c, d, weight=0.1)  # too weak to carry on

        dry = await post(
            client, "/api/v1/viz/activation-trace", {"seeds": [a], "decay": 0.2, "threshold": 0.2}
        )
        lit = {n["label"]: (n["hop"], round(n["activation"], 3)) for n in dry["nodes"]}
        assert lit == {"a": (0, 1.0), "b": (1, 0.8), "c": (2, 0.64)}
        assert dry["hops"] == 2 and dry["strengthened"] == []
        assert [(s["hop"], s["source"], s["target"]) for s in dry["steps"] if s["relation_id"] == ab] == [
            (1, a, b)
        ]
        relations = await get(client, f"/api/v1/entities/{a}/relations")
        assert relations["items"][0]["weight"] == 1.0 and relations["items"][0]["activations"] == 0

        await relate(client, a, d, weight=0.5)
        learning = await post(client, "/api/v1/viz/activation-trace", {"seeds": [a], "learning_rate": 0.5})
        changed = {s["target"]: s for s in learning["strengthened"] if s["source"] == a}
        assert changed[d]["after"] > changed[d]["before"] == 0.5
        series = await get(client, "/api/v1/viz/series")
        assert series["hebbian"]["activations_total"] >= 2 and sum(series["hebbian"]["strengthened"]) >= 2

        missing = await client.post(
            "/api/v1/viz/activation-trace", json={"seeds": ["00000000-0000-4000-8000-000000000000"]}
        )
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_learning_series(viz_client: Any) -> None:
    async with viz_client() as client:
        await post(client, "/api/v1/episodes", {"content": "long ago", "occurred_at": "2020-01-01T00:00:00Z"})
        for i in range(3):
            await episode(client, f"note number {i} about rivers")
        await entity(client, "river")
        await post(client, "/api/v1/episodes/recall", {"query": "rivers", "k": 2})

        series = await get(client, "/api/v1/viz/series", bucket="hour")
        assert len(series["times"]) in (48, 49)
        memory = series["memory"]
        assert sum(memory["added"]["episodic"]) == 4 and memory["total"]["episodic"][-1] == 4
        assert memory["total"]["semantic"][-1] == 1 and memory["total"]["procedural"][-1] == 0
        recalls = series["recalls"]
        assert recalls["recalls_total"]["episodic"] == 2 and sum(recalls["last_recalled"]["episodic"]) == 2
        assert sum(recalls["access_counts"]["counts"]["episodic"]) == 4
        assert sum(series["strength"]["retrieval"]["counts"]["episodic"]) == 4
        assert series["memory"]["archived"] == {"episodic": 0, "semantic": 0, "procedural": 0}
        consolidation = series["consolidation"]
        assert consolidation["available"] is True and consolidation["runs"] == 0

        run = await client.post("/api/v1/consolidation/run", json={})
        assert run.status_code == 200, run.text
        consolidation = (await get(client, "/api/v1/viz/series"))["consolidation"]
        assert consolidation["runs"] == 1 and consolidation["last_result"]["episodes"] == 4

        days = await get(
            client,
            "/api/v1/viz/series",
            bucket="day",
            since="2019-12-30T00:00:00Z",
            until="2020-01-03T00:00:00Z",
            kinds=["episodic"],
        )
        # Memories entered the store now, whatever time they describe: none in 2020.
        assert days["times"][0] == "2019-12-30T00:00:00Z" and len(days["times"]) == 4
        assert days["memory"]["total"]["episodic"] == [0, 0, 0, 0] and list(days["memory"]["added"]) == [
            "episodic"
        ]


async def test_gateway_usage(viz_client: Any) -> None:
    async with viz_client() as client:
        body = {"model": "mock/echo", "messages": [{"role": "user", "content": "one two three"}]}
        for _ in range(3):
            assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        failed = await client.post("/v1/chat/completions", json={**body, "mock": {"status": 503}})
        assert failed.status_code >= 500
        usage = await get(client, "/api/v1/viz/usage")
        assert sum(usage["requests"]) == 4 and sum(usage["errors"]) == 1
        assert sum(usage["tokens_out"]) == 9
        assert usage["models"][0]["model"] == "mock/echo" and usage["models"][0]["requests"] == 4
        assert len(usage["recent"]) == 4 and usage["recent"][0]["status"] >= 500


async def test_bad_input_is_refused(viz_client: Any) -> None:
    async with viz_client() as client:
        cases = [
            ("/api/v1/viz/series", {"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, 400),
            ("/api/v1/viz/series", {"since": "2000-01-01T00:00:00Z", "bucket": "hour"}, 400),
            ("/api/v1/viz/graph", {"kinds": "dreams"}, 422),
            ("/api/v1/viz/graph", {"limit": 0}, 422),
            ("/api/v1/viz/graph", {"since": "yesterday"}, 422),
            ("/api/v1/viz/usage", {"session_id": "not-a-uuid"}, 422),
        ]
        for path, params, status in cases:
            response = await client.get(path, params=params)
            assert response.status_code == status, (path, params, response.text)
            assert set(response.json()["error"]) >= {"code", "message", "type", "request_id"}
        for body in ({"seeds": []}, {"seeds": ["x"]}, {"seeds": [], "decay": 2}, {"seeds": [], "extra": 1}):
            response = await client.post("/api/v1/viz/activation-trace", json=body)
            assert response.status_code == 422 and "error" in response.json()


async def next_change(ws: Any) -> dict[str, Any]:
    while True:
        event = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        if event["type"] == "graph.changed":
            return event["data"]


async def test_live_graph_changes_on_ws(viz_app: Any) -> None:
    app = viz_app()
    async with (
        served(app) as base,
        httpx.AsyncClient(base_url=base) as client,
        connect(base.replace("http", "ws") + "/ws/viz") as ws,
    ):
        graph = await get(client, "/api/v1/viz/graph")
        assert graph["nodes"] == []
        ana = await entity(client, "Ana", type="person")
        created = await next_change(ws)
        assert created["action"] == "created" and created["nodes"][0]["id"] == ana
        assert created["nodes"][0]["label"] == "Ana" and created["nodes"][0]["group"] == "person"
        bo = await entity(client, "Bo")
        await next_change(ws)
        relation = await relate(client, ana, bo, weight=0.4)
        edge = (await next_change(ws))["edges"][0]
        assert (edge["id"], edge["source"], edge["target"], edge["weight"]) == (relation, ana, bo, 0.4)
        await post(client, "/api/v1/viz/activation-trace", {"seeds": [ana], "learning_rate": 0.5})
        strengthened = await next_change(ws)
        assert strengthened["action"] == "updated" and strengthened["weights"][relation] > 0.4
        assert (await client.delete(f"/api/v1/entities/{bo}")).status_code == 204
        deleted = await next_change(ws)
        assert deleted["action"] == "deleted" and deleted["ids"] == [bo]
        assert [n["label"] for n in (await get(client, "/api/v1/viz/graph"))["nodes"]] == ["Ana"]


def test_layout_and_projection_functions() -> None:
    rng = np.random.default_rng(3)
    # Three dense groups joined by a single bridge each: the layout separates them.
    groups = [range(i * 30, i * 30 + 30) for i in range(3)]
    pairs = [(a, b) for g in groups for a in g for b in g if a < b and rng.random() < 0.3]
    pairs += [(0, 30), (30, 60)]
    sources, targets = np.array(pairs).T
    positions, steps = force_layout(90, sources, targets, np.ones(len(pairs)), seconds=30)
    assert positions.shape == (90, 3) and steps == 150 and np.isfinite(positions).all()
    centres = np.array([positions[list(g)].mean(axis=0) for g in groups])
    spread = np.mean(
        [np.linalg.norm(positions[list(g)] - centres[i], axis=1).mean() for i, g in enumerate(groups)]
    )
    assert min(np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i)) > spread
    assert np.array_equal(positions, force_layout(90, sources, targets, np.ones(len(pairs)), seconds=30)[0])
    assert force_layout(0, sources[:0], targets[:0], np.ones(0))[0].shape == (0, 3)

    # Points on a tilted plane: two components explain everything, the third nothing.
    flat = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 16))
    projected, explained = pca_3d(flat)
    assert explained[0] >= explained[1] and abs(explained[:2].sum() - 1) < 1e-9 and explained[2] < 1e-9
    assert np.allclose(np.linalg.norm(projected[:, :2], axis=1), np.linalg.norm(flat - flat.mean(0), axis=1))


async def test_dashboard_is_served_with_its_assets(viz_app: Any, create_key: Any) -> None:
    app = viz_app()
    async with running(app) as client:
        page = await client.get("/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<meta name="mnemogate-keys" content="open"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        scripts = re.findall(r'src="/dashboard/assets/([^"]+\.js)"', page.text)
        assert len(scripts) == 1
        script = await client.get(f"/dashboard/assets/{scripts[0]}")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert len(script.content) > 100_000  # three.js and the dashboard, built
        missing = await client.get("/dashboard/assets/..%2Fdashboard.py")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

        await create_key(app, tenant="acme")
        # Once keys exist the page (public, without data) asks for one; the API refuses without.
        assert '<meta name="mnemogate-keys" content="required"' in (await client.get("/dashboard")).text
        assert (await client.get("/api/v1/viz/graph")).status_code == 401


@pytest.mark.postgres
async def test_graph_and_projection_on_postgresql(viz_app: Any, postgres_migrated_url: str) -> None:
    app = viz_app(database_url=postgres_migrated_url)
    async with running(app) as client:
        ada, bob = await entity(client, "Ada"), await entity(client, "Bob")
        knows = await relate(client, ada, bob, weight=0.7)
        await episode(client, "Ada met Bob", session_id="s")
        await episode(client, "they talked", session_id="s")
        graph = await get(client, "/api/v1/viz/graph")
        assert graph["counts"] == {"episodic": 2, "semantic": 2, "procedural": 0}
        assert [(e["id"], e["weight"]) for e in graph["edges"] if e["kind"] == "relation"] == [(knows, 0.7)]
        projection = await get(client, "/api/v1/viz/embeddings")
        assert len(projection["points"]) == 4 and projection["dimensions"] == 384
