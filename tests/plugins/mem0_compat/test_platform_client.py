"""The platform API through the real ``mem0ai`` client: ``MemoryClient(host=..., api_key=...)``
against a uvicorn server, every call as the package makes it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from mnemogate.core.testing import served

# The machine is offline: mem0ai's telemetry must not try to phone home. Read at import.
os.environ["MEM0_TELEMETRY"] = "False"

from mem0 import MemoryClient
from mem0.exceptions import MemoryNotFoundError, ValidationError


@pytest.fixture(autouse=True)
def mem0_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEM0_DIR", str(tmp_path / "mem0"))
    monkeypatch.setenv("HOME", str(tmp_path))


def platform_flow(host: str, key: str, other_key: str) -> None:
    client = MemoryClient(host=host, api_key=key)
    assert (client.org_id, client.project_id) == ("mnemogate", "default")

    added = client.add(
        [
            {"role": "user", "content": "I'm Alex. I live in Lisbon and I love hiking."},
            {"role": "assistant", "content": "Lisbon has great trails nearby!"},
        ],
        user_id="alex",
        metadata={"source": "chat"},
        infer=False,
    )
    assert [r["event"] for r in added["results"]] == ["ADD", "ADD"]
    facts = client.add("Alex prefers window seats. Alex is allergic to peanuts.", filters={"user_id": "alex"})
    assert [(r["memory"], r["event"]) for r in facts["results"]] == [
        ("Alex prefers window seats.", "ADD"),
        ("Alex is allergic to peanuts.", "ADD"),
    ]
    client.add("Bo collects stamps.", user_id="bo", agent_id="helper", infer=False)

    everything = client.get_all(filters={"user_id": "alex"}, page=1, page_size=3)
    assert everything["count"] == 4 and len(everything["results"]) == 3 and everything["next"]
    second = client.get_all(filters={"user_id": "alex"}, page=2, page_size=3)
    assert len(second["results"]) == 1 and second["previous"] and second["next"] is None
    either = client.get_all(filters={"OR": [{"user_id": "bo"}, {"metadata": {"source": "chat"}}]})
    assert either["count"] == 3
    this_year = client.get_all(
        filters={"AND": [{"user_id": "alex"}, {"created_at": {"gte": "2000-01-01", "lte": "2999-12-31"}}]}
    )
    assert this_year["count"] == 4
    assert (
        client.get_all(filters={"AND": [{"user_id": "alex"}, {"created_at": {"lt": "2000-01-01"}}]})["count"]
        == 0
    )

    found = client.search("is Alex allergic to peanuts", filters={"user_id": "alex"}, top_k=2)
    assert found["results"][0]["memory"] == "Alex is allergic to peanuts."
    assert "score" in found["results"][0] and len(found["results"]) == 2
    agents_only = client.search("stamps", filters={"agent_id": {"in": ["helper"]}})
    assert [r["memory"] for r in agents_only["results"]] == ["Bo collects stamps."]

    peanuts = found["results"][0]["id"]
    memory = client.get(peanuts)
    assert memory["user_id"] == "alex" and memory["immutable"] is False and memory["hash"]
    updated = client.update(
        peanuts, text="Alex is allergic to peanuts and cashews.", metadata={"severity": "high"}
    )
    assert updated["memory"] == "Alex is allergic to peanuts and cashews." and updated["metadata"] == {
        "severity": "high"
    }
    history = client.history(peanuts)
    assert [(h["event"], h["new_memory"]) for h in history] == [
        ("ADD", "Alex is allergic to peanuts."),
        ("UPDATE", "Alex is allergic to peanuts and cashews."),
    ]
    assert client.feedback(peanuts, feedback="positive")["feedback"] == "POSITIVE"

    ids = [m["id"] for m in client.get_all(filters={"user_id": "alex"})["results"]]
    batch = client.batch_update([{"memory_id": ids[0], "text": "Alex lives in Porto now."}])
    assert batch["message"] == "Successfully updated 1 memories"
    assert client.get(ids[0])["memory"] == "Alex lives in Porto now."

    # Another tenant's key sees none of it.
    stranger = MemoryClient(host=host, api_key=other_key)
    with pytest.raises(MemoryNotFoundError):
        stranger.get(peanuts)
    assert stranger.get_all(filters={"user_id": "alex"})["count"] == 0
    assert stranger.search("peanuts", filters={"user_id": "alex"})["results"] == []
    assert stranger.users()["results"] == []

    entities = {(e["type"], e["name"]): e["total_memories"] for e in client.users()["results"]}
    assert entities == {("user", "alex"): 4, ("user", "bo"): 1, ("agent", "helper"): 1}
    assert client.delete(ids[1]) == {"message": "Memory deleted successfully!"}
    with pytest.raises(MemoryNotFoundError):
        client.get(ids[1])
    client.batch_delete([{"memory_id": ids[2]}])
    assert client.delete_all(user_id="bo") == {"message": "Memories deleted successfully!"}
    assert client.delete_users(user_id="alex") == {"message": "Entity deleted successfully."}
    assert client.get_all(filters={"user_id": "alex"})["count"] == 0
    with pytest.raises(ValidationError):
        client.add("Somebody said something.", infer=False)  # no user, agent, app or run
    client.add("Carol runs marathons.", user_id="carol", run_id="r9", infer=False)
    assert client.reset()["message"].startswith("Client reset successful")
    assert client.users()["results"] == [] and client.get_all()["count"] == 0


async def test_memory_client_against_a_running_server(
    mem0_app: Callable[..., FastAPI], create_key: Any
) -> None:
    app = mem0_app()
    async with served(app) as host:
        key = await create_key(app, tenant="acme")
        other_key = await create_key(app, tenant="globex")
        await asyncio.to_thread(platform_flow, host, key, other_key)


async def test_a_wrong_key_is_refused_at_construction(
    mem0_app: Callable[..., FastAPI], create_key: Any
) -> None:
    app = mem0_app()
    async with served(app) as host:
        await create_key(app)
        with pytest.raises(ValueError, match="invalid or revoked API key"):
            await asyncio.to_thread(MemoryClient, host=host, api_key="mg_not-a-real-key")
