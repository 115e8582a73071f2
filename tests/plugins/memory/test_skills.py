"""Procedural memory over HTTP: skill CRUD, executions with their track record, and matching
that weighs similarity and success rate."""

from __future__ import annotations

from typing import Any

import httpx


async def skill(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/skills", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def run(client: httpx.AsyncClient, skill_id: str, status: str, duration_ms: float) -> dict[str, Any]:
    started = await client.post(f"/api/v1/skills/{skill_id}/executions", json={"context": {"ticket": 7}})
    assert started.status_code == 201 and started.json()["status"] == "running"
    finished = await client.patch(
        f"/api/v1/skills/executions/{started.json()['id']}",
        json={
            "status": status,
            "duration_ms": duration_ms,
            **({"error": "boom"} if status == "failure" else {}),
        },
    )
    assert finished.status_code == 200, finished.text
    return finished.json()


async def test_skill_crud(memory_client: Any) -> None:
    async with memory_client() as client:
        made = await skill(
            client,
            "restart nginx",
            description="reload the web server",
            steps=["nginx -t", "systemctl reload nginx"],
        )
        assert made["stats"] == {
            "executions": 0,
            "successes": 0,
            "failures": 0,
            "running": 0,
            "success_rate": None,
            "mean_duration_ms": None,
        }
        changed = await client.put(f"/api/v1/skills/{made['id']}", json={"tags": ["ops"]})
        assert changed.json()["tags"] == ["ops"] and changed.json()["steps"] == made["steps"]
        assert (await client.get(f"/api/v1/skills/{made['id']}")).json()["tags"] == ["ops"]
        assert len((await client.get("/api/v1/skills")).json()["items"]) == 1
        assert (await client.delete(f"/api/v1/skills/{made['id']}")).status_code == 204
        assert (await client.get(f"/api/v1/skills/{made['id']}")).status_code == 404
        assert (await client.post("/api/v1/skills/match", json={"task": "reload nginx"})).json()[
            "items"
        ] == []


async def test_executions_record_success_rate_and_duration(memory_client: Any) -> None:
    async with memory_client() as client:
        made = await skill(client, "compile the report")
        await run(client, made["id"], "success", 100)
        failed = await run(client, made["id"], "failure", 300)
        assert failed["error"] == "boom" and failed["finished_at"] is not None
        again = await client.patch(f"/api/v1/skills/executions/{failed['id']}", json={"status": "success"})
        assert again.status_code == 409
        open_run = await client.post(f"/api/v1/skills/{made['id']}/executions", json={})
        history = (await client.get(f"/api/v1/skills/{made['id']}/executions", params={"limit": 2})).json()
        assert history["stats"] == {
            "executions": 3,
            "successes": 1,
            "failures": 1,
            "running": 1,
            "success_rate": 0.5,
            "mean_duration_ms": 200.0,
        }
        assert len(history["items"]) == 2 and history["next_cursor"]
        finished = await client.patch(
            f"/api/v1/skills/executions/{open_run.json()['id']}", json={"status": "success"}
        )
        assert finished.json()["duration_ms"] >= 0
        bad = await client.patch(
            f"/api/v1/skills/executions/{open_run.json()['id']}", json={"status": "maybe"}
        )
        assert bad.status_code == 422
        missing = "00000000-0000-4000-8000-000000000000"
        assert (await client.post(f"/api/v1/skills/{missing}/executions", json={})).status_code == 404
        assert (
            await client.patch(f"/api/v1/skills/executions/{missing}", json={"status": "success"})
        ).status_code == 404


async def test_match_weighs_similarity_and_success(memory_client: Any) -> None:
    async with memory_client() as client:
        flaky = await skill(client, "deploy the service", description="deploy with the old script")
        solid = await skill(client, "deploy the service", description="deploy with the new pipeline")
        await skill(client, "bake bread", description="flour water yeast")
        for _ in range(3):
            await run(client, flaky["id"], "failure", 50)
            await run(client, solid["id"], "success", 50)
        matched = await client.post(
            "/api/v1/skills/match", json={"task": "deploy the service", "explain": True}
        )
        items = matched.json()["items"]
        assert [i["skill"]["id"] for i in items[:2]] == [solid["id"], flaky["id"]]
        assert items[0]["explain"]["smoothed_success"] == 0.8
        proven = await client.post("/api/v1/skills/match", json={"task": "deploy", "min_success_rate": 0.5})
        assert [i["skill"]["id"] for i in proven.json()["items"]] == [solid["id"]]
