"""Mem0's OSS REST server API, spoken as plain HTTP the way Mem0's own clients send it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from mnemogate.core.testing import running


def messages(*contents: str, role: str = "user") -> list[dict[str, str]]:
    return [{"role": role, "content": c} for c in contents]


async def test_add_list_get_update_history_delete(mem0_app: Callable[..., FastAPI]) -> None:
    async with running(mem0_app()) as http:
        added = await http.post(
            "/memories",
            json={
                "messages": messages("I live in Lisbon", "My sister is called Ana"),
                "user_id": "alex",
                "run_id": "chat-1",
                "metadata": {"source": "onboarding"},
                "infer": False,
            },
        )
        assert added.status_code == 200, added.text
        results = added.json()["results"]
        assert [(r["memory"], r["event"]) for r in results] == [
            ("I live in Lisbon", "ADD"),
            ("My sister is called Ana", "ADD"),
        ]
        lisbon = results[0]["id"]

        # The same text again for the same user is not stored twice.
        again = await http.post(
            "/memories", json={"messages": messages("I live in Lisbon"), "user_id": "alex", "infer": False}
        )
        assert again.json()["results"] == [{"id": lisbon, "memory": "I live in Lisbon", "event": "NONE"}]

        listed = (await http.get("/memories", params={"user_id": "alex"})).json()["results"]
        assert {m["memory"] for m in listed} == {"I live in Lisbon", "My sister is called Ana"}
        assert all(m["user_id"] == "alex" and m["run_id"] == "chat-1" for m in listed)
        assert (await http.get("/memories", params={"user_id": "someone-else"})).json() == {"results": []}

        one = (await http.get(f"/memories/{lisbon}")).json()
        assert one["memory"] == "I live in Lisbon"
        assert one["metadata"] == {"source": "onboarding"}
        assert len(one["hash"]) == 32 and one["role"] == "user"

        updated = await http.put(f"/memories/{lisbon}", json={"text": "I live in Porto"})
        assert updated.json() == {"message": "Memory updated successfully!"}
        assert (await http.get(f"/memories/{lisbon}")).json()["memory"] == "I live in Porto"

        assert (await http.delete(f"/memories/{lisbon}")).json() == {"message": "Memory deleted successfully"}
        gone = await http.get(f"/memories/{lisbon}")
        assert gone.status_code == 404 and gone.json() == {"detail": "Memory not found"}

        history = (await http.get(f"/memories/{lisbon}/history")).json()
        assert [(h["event"], h["old_memory"], h["new_memory"], h["is_deleted"]) for h in history] == [
            ("ADD", None, "I live in Lisbon", False),
            ("UPDATE", "I live in Lisbon", "I live in Porto", False),
            ("DELETE", "I live in Porto", None, True),
        ]
        assert {"id", "memory_id", "created_at", "updated_at", "actor_id", "role"} <= set(history[0])


async def test_search_scoped_filtered_and_explained(mem0_app: Callable[..., FastAPI]) -> None:
    async with running(mem0_app()) as http:
        for user, text, topic in (
            ("alex", "Alex likes green tea in the morning", "food"),
            ("alex", "Alex works as a nurse in Lisbon", "work"),
            ("bo", "Bo likes green tea with honey", "food"),
        ):
            body = {"messages": messages(text), "user_id": user, "metadata": {"topic": topic}, "infer": False}
            assert (await http.post("/memories", json=body)).status_code == 200

        found = (await http.post("/search", json={"query": "green tea", "user_id": "alex"})).json()["results"]
        assert found[0]["memory"] == "Alex likes green tea in the morning"
        assert all(r["user_id"] == "alex" for r in found)
        assert found[0]["score"] >= found[-1]["score"]

        by_topic = await http.post(
            "/search", json={"query": "green tea", "filters": {"topic": "work"}, "user_id": "alex"}
        )
        assert [r["memory"] for r in by_topic.json()["results"]] == ["Alex works as a nurse in Lisbon"]

        either = await http.post(
            "/search",
            json={
                "query": "tea",
                "filters": {"OR": [{"user_id": "bo"}, {"topic": {"in": ["work"]}}]},
                "top_k": 5,
                "explain": True,
            },
        )
        results = either.json()["results"]
        assert {r["memory"] for r in results} == {
            "Bo likes green tea with honey",
            "Alex works as a nurse in Lisbon",
        }
        assert "relevance" in results[0]["score_details"]

        top1 = await http.post("/search", json={"query": "tea", "top_k": 1, "user_id": "alex"})
        assert len(top1.json()["results"]) == 1


async def test_infer_extracts_facts_and_reconciles(mem0_app: Callable[..., FastAPI]) -> None:
    async with running(mem0_app(mem0_compat={"update_similarity": 0.5})) as http:
        first = await http.post(
            "/memories",
            json={
                "messages": [
                    {"role": "user", "content": "Hi! I am a vegetarian. What should I cook tonight?"},
                    {"role": "assistant", "content": "How about a lentil curry?"},
                ],
                "user_id": "alex",
            },
        )
        assert [(r["memory"], r["event"]) for r in first.json()["results"]] == [("I am a vegetarian.", "ADD")]
        memory_id = first.json()["results"][0]["id"]

        same = await http.post(
            "/memories", json={"messages": messages("I am a vegetarian."), "user_id": "alex"}
        )
        assert [r["event"] for r in same.json()["results"]] == ["NONE"]

        changed = await http.post(
            "/memories", json={"messages": messages("I am not a vegetarian anymore."), "user_id": "alex"}
        )
        assert changed.json()["results"] == [
            {
                "id": memory_id,
                "memory": "I am not a vegetarian anymore.",
                "event": "UPDATE",
                "previous_memory": "I am a vegetarian.",
            }
        ]
        forgotten = await http.post(
            "/memories",
            json={"messages": messages("Forget that I am not a vegetarian anymore."), "user_id": "alex"},
        )
        assert [(r["id"], r["event"]) for r in forgotten.json()["results"]] == [(memory_id, "DELETE")]
        events = [h["event"] for h in (await http.get(f"/memories/{memory_id}/history")).json()]
        assert events == ["ADD", "UPDATE", "DELETE"]
        assert (await http.get("/memories", params={"user_id": "alex"})).json() == {"results": []}


async def test_errors_in_mem0_shape(mem0_app: Callable[..., FastAPI]) -> None:
    async with running(mem0_app()) as http:
        no_scope = await http.post("/memories", json={"messages": messages("hello there friend")})
        assert no_scope.status_code == 400
        assert no_scope.json() == {
            "detail": "At least one identifier (user_id, agent_id, run_id) is required."
        }
        invalid = await http.post("/memories", json={"messages": "not a list", "user_id": "a"})
        assert invalid.status_code == 422
        assert invalid.json()["detail"][0]["loc"] == ["body", "messages"]
        assert (await http.get("/memories")).json() == {"detail": "At least one identifier is required."}
        bad_filter = await http.post("/search", json={"query": "x", "filters": {"n": {"near": 1}}})
        assert bad_filter.status_code == 400 and "near" in bad_filter.json()["detail"]
        # Other paths keep mnemogate's envelope.
        assert "error" in (await http.get("/api/v1/episodes/not-an-id")).json()


async def test_entities_delete_all_reset_and_expiry(mem0_app: Callable[..., FastAPI]) -> None:
    async with running(mem0_app()) as http:
        for body in (
            {"user_id": "alex", "messages": messages("Alex plays chess"), "infer": False},
            {
                "user_id": "alex",
                "agent_id": "coach",
                "messages": messages("Alex trains on Sundays"),
                "infer": False,
            },
            {
                "run_id": "r1",
                "messages": messages("The build is red"),
                "infer": False,
                "expiration_date": "2020-01-01",
            },
        ):
            assert (await http.post("/memories", json=body)).status_code == 200
        entities = {
            (e["type"], e["id"]): e["total_memories"] for e in (await http.get("/entities")).json()["results"]
        }
        assert entities == {("user", "alex"): 2, ("agent", "coach"): 1, ("run", "r1"): 1}

        # Expired memories are hidden unless asked for.
        assert (await http.get("/memories", params={"run_id": "r1"})).json() == {"results": []}
        shown = (await http.get("/memories", params={"run_id": "r1", "show_expired": "true"})).json()[
            "results"
        ]
        assert shown[0]["expiration_date"] == "2020-01-01"

        deleted = await http.delete("/entities/agent/coach")
        assert deleted.json() == {"message": "Entity deleted successfully."}
        assert [
            m["memory"] for m in (await http.get("/memories", params={"user_id": "alex"})).json()["results"]
        ] == ["Alex plays chess"]
        assert (await http.delete("/entities/agent/coach")).status_code == 200  # nothing left: still fine
        assert (await http.delete("/memories", params={"user_id": "alex"})).json() == {
            "message": "All relevant memories deleted"
        }
        assert (await http.post("/reset")).json() == {"message": "All memories reset"}
        assert (await http.get("/entities")).json() == {"results": []}


async def test_configure(mem0_app: Callable[..., FastAPI]) -> None:
    async with running(mem0_app()) as http:
        config = (await http.get("/configure")).json()
        assert config["llm"] == {"provider": "offline"}
        assert config["embedder"]["provider"] == "hashing"
        providers = (await http.get("/configure/providers")).json()
        assert "offline" in providers["llm"] and "minilm" in providers["embedder"]
        refused = await http.post("/configure", json={"vector_store": {"provider": "qdrant"}})
        assert refused.status_code == 400 and "vector_store" in refused.json()["detail"]
        unknown_model = await http.post("/configure", json={"llm": {"config": {"model": "nowhere/none"}}})
        assert unknown_model.status_code == 404
        prompt = "Extract only food preferences."
        assert (
            await http.post("/configure", json={"custom_fact_extraction_prompt": prompt})
        ).status_code == 200
        assert (await http.get("/configure")).json()["custom_fact_extraction_prompt"] == prompt


async def test_tenants_are_isolated(mem0_app: Callable[..., FastAPI], create_key: Any) -> None:
    app = mem0_app()
    async with running(app) as http:
        acme = {"Authorization": f"Token {await create_key(app, tenant='acme')}"}
        globex = {"X-API-Key": await create_key(app, tenant="globex")}
        added = await http.post(
            "/memories",
            json={"messages": messages("The launch code is blue"), "user_id": "u", "infer": False},
            headers=acme,
        )
        memory_id = added.json()["results"][0]["id"]
        assert (await http.get(f"/memories/{memory_id}", headers=globex)).status_code == 404
        assert (await http.get("/memories", params={"user_id": "u"}, headers=globex)).json() == {
            "results": []
        }
        found = await http.post("/search", json={"query": "launch code", "user_id": "u"}, headers=globex)
        assert found.json() == {"results": []}
        assert (
            await http.put(f"/memories/{memory_id}", json={"text": "x y"}, headers=globex)
        ).status_code == 404
        assert (await http.delete(f"/memories/{memory_id}", headers=globex)).status_code == 404
        assert (await http.get(f"/memories/{memory_id}/history", headers=globex)).json() == []
        assert (await http.post("/reset", headers=globex)).status_code == 200
        assert (await http.get(f"/memories/{memory_id}", headers=acme)).status_code == 200
        unauthenticated = await http.get("/memories", params={"user_id": "u"}, headers={"X-API-Key": "wrong"})
        assert unauthenticated.status_code == 401 and "detail" in unauthenticated.json()


async def test_infer_with_a_gateway_model(mem0_app: Callable[..., FastAPI]) -> None:
    """With an extraction model configured, the facts are the model's (here the mock provider's
    scripted answer), reconciled like the offline extractor's."""
    replies = ['{"facts": ["Alex likes jazz", "Alex lives in Oslo"]}', "no JSON here"]
    app = mem0_app(providers={"mock": {"replies": replies}}, mem0_compat={"llm_model": "mock/scripted"})
    async with running(app) as http:
        added = await http.post(
            "/memories", json={"messages": messages("I'm Alex, tell me something"), "user_id": "a"}
        )
        assert [(r["memory"], r["event"]) for r in added.json()["results"]] == [
            ("Alex likes jazz", "ADD"),
            ("Alex lives in Oslo", "ADD"),
        ]
        assert (await http.get("/configure")).json()["llm"] == {
            "provider": "gateway",
            "config": {"model": "mock/scripted"},
        }
        broken = await http.post("/memories", json={"messages": messages("More about me"), "user_id": "a"})
        assert broken.status_code == 503 and "did not answer with JSON" in broken.json()["detail"]
        # Per tenant, POST /configure switches back to the offline extractor.
        assert (await http.post("/configure", json={"llm": {"provider": "offline"}})).status_code == 200
        offline = await http.post(
            "/memories", json={"messages": messages("Alex owns a red bike."), "user_id": "a"}
        )
        assert [r["memory"] for r in offline.json()["results"]] == ["Alex owns a red bike."]
