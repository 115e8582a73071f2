"""Tenant isolation through HTTP: a key of tenant A never reads, lists, searches, changes or
deletes tenant B's memories, for every memory type."""

from __future__ import annotations

from typing import Any

import httpx

from mnemogate.core.testing import running

MISSING = "00000000-0000-4000-8000-000000000000"


async def test_keys_of_two_tenants_see_only_their_own_memories(memory_app: Any, make_key: Any) -> None:
    app = memory_app()
    async with running(app) as client:
        a, b = await make_key(app, "acme"), await make_key(app, "globex")
        reader_b = await make_key(app, "globex", scope="read")

        async def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
            return await client.post(path, json=body, headers=headers)

        episode = (await post("/api/v1/episodes", {"content": "acme launch plan"}, a)).json()
        entity = (await post("/api/v1/entities", {"name": "acme launch"}, a)).json()
        other = (await post("/api/v1/entities", {"name": "globex launch"}, b)).json()
        skill = (await post("/api/v1/skills", {"name": "acme launch checklist"}, a)).json()

        for path in (
            f"/api/v1/episodes/{episode['id']}",
            f"/api/v1/entities/{entity['id']}",
            f"/api/v1/entities/{entity['id']}/history",
            f"/api/v1/entities/{entity['id']}/relations",
            f"/api/v1/skills/{skill['id']}",
            f"/api/v1/skills/{skill['id']}/executions",
        ):
            assert (await client.get(path, headers=b)).status_code == 404, path
            assert (await client.get(path, headers=a)).status_code == 200, path
        assert (await client.get("/api/v1/episodes", headers=b)).json()["items"] == []
        assert (await client.get("/api/v1/skills", headers=b)).json()["items"] == []
        assert [e["id"] for e in (await client.get("/api/v1/entities", headers=b)).json()["items"]] == [
            other["id"]
        ]
        assert (await post("/api/v1/episodes/recall", {"query": "acme launch plan"}, b)).json()["items"] == []
        found = (await post("/api/v1/entities/search", {"query": "launch"}, b)).json()["items"]
        assert [f["entity"]["id"] for f in found] == [other["id"]]
        assert (await post("/api/v1/skills/match", {"task": "acme launch"}, b)).json()["items"] == []

        assert (
            await client.put(f"/api/v1/episodes/{episode['id']}", json={"content": "x"}, headers=b)
        ).status_code == 404
        assert (
            await post(f"/api/v1/episodes/{episode['id']}/feedback", {"importance": 0}, b)
        ).status_code == 404
        relation = {"source_id": other["id"], "target_id": entity["id"], "type": "rivals"}
        assert (await post("/api/v1/entities/relations", relation, b)).status_code == 404
        spread = {"seeds": [entity["id"]]}
        assert (await post("/api/v1/entities/spread-activation", spread, b)).status_code == 404
        assert (await post(f"/api/v1/skills/{skill['id']}/executions", {}, b)).status_code == 404
        run = (await post(f"/api/v1/skills/{skill['id']}/executions", {}, a)).json()
        finish = await client.patch(
            f"/api/v1/skills/executions/{run['id']}", json={"status": "success"}, headers=b
        )
        assert finish.status_code == 404
        for path in (
            f"/api/v1/episodes/{episode['id']}",
            f"/api/v1/entities/{entity['id']}",
            f"/api/v1/skills/{skill['id']}",
        ):
            assert (await client.delete(path, headers=b)).status_code == 404
            assert (await client.get(path, headers=a)).status_code == 200

        assert (await post("/api/v1/episodes", {"content": "x"}, reader_b)).status_code == 403
        assert (await client.get("/api/v1/episodes")).status_code == 401
        assert (await client.get(f"/api/v1/episodes/{MISSING}", headers=a)).status_code == 404
        recalled = (await post("/api/v1/episodes/recall", {"query": "acme launch plan"}, a)).json()["items"]
        assert [r["episode"]["id"] for r in recalled] == [episode["id"]]
