"""Semantic memory over HTTP: entity CRUD with bi-temporal history, relations, search and
spreading activation whose Hebbian strengthening later calls see."""

from __future__ import annotations

from typing import Any

import httpx


async def entity(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/entities", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def relate(
    client: httpx.AsyncClient, source: str, target: str, kind: str, weight: float
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/entities/relations",
        json={"source_id": source, "target_id": target, "type": kind, "weight": weight},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_updates_supersede_and_keep_history(memory_client: Any) -> None:
    async with memory_client() as client:
        alice = await entity(
            client, "Alice", type="person", attributes={"city": "Lyon"}, valid_from="2020-01-01T00:00:00Z"
        )
        assert alice["version"] == 1 and alice["valid_to"] is None
        moved = await client.put(
            f"/api/v1/entities/{alice['id']}",
            json={"attributes": {"city": "Oslo"}, "valid_from": "2024-03-01T00:00:00Z"},
        )
        assert moved.status_code == 200
        assert moved.json()["version"] == 2 and moved.json()["attributes"] == {"city": "Oslo"}
        assert moved.json()["name"] == "Alice" and moved.json()["type"] == "person"
        current = (await client.get(f"/api/v1/entities/{alice['id']}")).json()
        assert current["version"] == 2

        history = (await client.get(f"/api/v1/entities/{alice['id']}/history")).json()["items"]
        assert [v["version"] for v in history] == [2, 1]
        old = history[1]
        assert old["attributes"] == {"city": "Lyon"}
        assert old["valid_to"] == "2024-03-01T00:00:00Z" and old["superseded_at"] is not None
        as_of = await client.get(f"/api/v1/entities/{alice['id']}", params={"as_of": alice["recorded_at"]})
        assert as_of.json()["version"] == 1

        found = await client.post("/api/v1/entities/search", json={"query": "Oslo", "mode": "keyword"})
        assert [f["entity"]["version"] for f in found.json()["items"]] == [2]
        assert (
            await client.post("/api/v1/entities/search", json={"query": "Lyon", "mode": "keyword"})
        ).json()["items"] == []

        assert (await client.delete(f"/api/v1/entities/{alice['id']}")).status_code == 204
        assert (await client.get(f"/api/v1/entities/{alice['id']}")).status_code == 404
        assert (await client.get(f"/api/v1/entities/{alice['id']}/history")).status_code == 404


async def test_list_search_and_type_filter(memory_client: Any) -> None:
    async with memory_client() as client:
        await entity(client, "Paris", type="city", description="capital of France")
        await entity(client, "Paris Hilton", type="person", description="media personality")
        await entity(client, "Rome", type="city", description="capital of Italy")
        cities = (await client.get("/api/v1/entities", params={"type": "city", "limit": 1})).json()
        assert len(cities["items"]) == 1 and cities["next_cursor"]
        found = await client.post(
            "/api/v1/entities/search", json={"query": "Paris", "type": "city", "explain": True}
        )
        items = found.json()["items"]
        assert [i["entity"]["name"] for i in items] == ["Paris", "Rome"]
        assert "relevance" in items[0]["explain"]


async def test_relations_are_validated_and_listed(memory_client: Any) -> None:
    async with memory_client() as client:
        a, b = await entity(client, "A"), await entity(client, "B")
        made = await relate(client, a["id"], b["id"], "knows", 0.4)
        assert made["weight"] == 0.4 and made["activations"] == 0
        again = await client.post(
            "/api/v1/entities/relations", json={"source_id": a["id"], "target_id": b["id"], "type": "knows"}
        )
        assert again.status_code == 409
        missing = await client.post(
            "/api/v1/entities/relations",
            json={"source_id": a["id"], "target_id": "00000000-0000-4000-8000-000000000000", "type": "knows"},
        )
        assert missing.status_code == 404
        zero = await client.post(
            "/api/v1/entities/relations",
            json={"source_id": a["id"], "target_id": b["id"], "type": "x", "weight": 0},
        )
        assert zero.status_code == 422
        outgoing = (
            await client.get(f"/api/v1/entities/{a['id']}/relations", params={"direction": "out"})
        ).json()
        incoming = (
            await client.get(f"/api/v1/entities/{a['id']}/relations", params={"direction": "in"})
        ).json()
        assert [r["id"] for r in outgoing["items"]] == [made["id"]] and incoming["items"] == []
        both = (await client.get(f"/api/v1/entities/{b['id']}/relations")).json()
        assert [r["id"] for r in both["items"]] == [made["id"]]


async def test_spreading_activation_decays_and_hebbian_learning_sticks(memory_client: Any) -> None:
    async with memory_client() as client:
        coffee, cafe, paris, france, unrelated = [
            await entity(client, name) for name in ("coffee", "cafe", "Paris", "France", "volcano")
        ]
        first_edge = await relate(client, coffee["id"], cafe["id"], "served_at", 0.8)
        await relate(client, cafe["id"], paris["id"], "located_in", 0.6)
        await relate(client, paris["id"], france["id"], "capital_of", 0.9)
        await relate(client, unrelated["id"], france["id"], "in", 0.9)

        request = {
            "seeds": [coffee["id"]],
            "max_hops": 3,
            "decay": 0.2,
            "threshold": 0.1,
            "learning_rate": 0.5,
        }
        first = (await client.post("/api/v1/entities/spread-activation", json=request)).json()
        levels = {a["entity"]["name"]: (round(a["activation"], 4), a["hops"]) for a in first["activated"]}
        # 1.0 -> 1.0*0.8*0.8 = 0.64 -> 0.64*0.6*0.8 = 0.3072 -> 0.3072*0.9*0.8 = 0.2212 (3 hops)
        assert levels == {
            "coffee": (1.0, 0),
            "cafe": (0.64, 1),
            "Paris": (0.3072, 2),
            "France": (0.2212, 3),
        }
        strengthened = {s["relation_id"]: s for s in first["strengthened"]}
        assert first_edge["id"] in strengthened
        edge = strengthened[first_edge["id"]]
        assert abs(edge["weight_after"] - (0.8 + 0.5 * 1.0 * 0.64 * 0.2)) < 1e-9

        second = (await client.post("/api/v1/entities/spread-activation", json=request)).json()
        again = {a["entity"]["name"]: a["activation"] for a in second["activated"]}
        assert again["cafe"] > 0.64 and again["France"] > levels["France"][0]
        listed = (await client.get(f"/api/v1/entities/{coffee['id']}/relations")).json()["items"][0]
        assert listed["weight"] == strengthened_after(second, first_edge["id"]) and listed["activations"] == 2

        frozen = {**request, "learning_rate": 0}
        third = (await client.post("/api/v1/entities/spread-activation", json=frozen)).json()
        assert third["strengthened"] == []
        unknown = {**request, "seeds": ["00000000-0000-4000-8000-000000000000"]}
        assert (await client.post("/api/v1/entities/spread-activation", json=unknown)).status_code == 404


def strengthened_after(result: dict[str, Any], relation_id: str) -> float:
    return next(s["weight_after"] for s in result["strengthened"] if s["relation_id"] == relation_id)
