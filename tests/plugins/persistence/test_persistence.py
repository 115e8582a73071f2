"""Persistence over HTTP: status, checkpoints, backups and an atomic restore while serving, and the
tenant's memories exported and imported as JSONL (idempotent, bad lines reported; the round trip
runs on SQLite and on PostgreSQL + pgvector)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text

from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app, running

P = "/api/v1/persistence"
HASHING = {"memory": {"embedder": "hashing"}}


@pytest.fixture
def memory_app(mnemogate_settings: Settings) -> Callable[..., FastAPI]:
    """``memory_app(database_url=..., persistence={...})``: an app with the fast test embedder."""

    def make(database_url: SecretStr | None = None, plugins: Sequence[object] = (), **tables: Any) -> FastAPI:
        update: dict[str, Any] = {"plugins": PluginsConfig.model_validate({**HASHING, **tables})}
        if database_url is not None:
            update["database_url"] = database_url
        return build_app(mnemogate_settings.model_copy(update=update), plugins=plugins)

    return make


def on(backend_database: str | None) -> SecretStr | None:
    """``memory_app``'s ``database_url`` for the backend under test (None: the data directory's
    SQLite file)."""
    return None if backend_database is None else SecretStr(backend_database)


async def seed(client: httpx.AsyncClient, prefix: str = "") -> dict[str, Any]:
    episodes = await client.post(
        "/api/v1/episodes",
        json={
            "episodes": [
                {
                    "content": f"{prefix}Ana adopted a grey kitten named Pixel",
                    "actor": "Ana",
                    "session_id": "s1",
                },
                {"content": f"{prefix}The budget review is due on Friday", "importance": 0.9},
            ]
        },
    )
    assert episodes.status_code == 201, episodes.text
    ana = (await client.post("/api/v1/entities", json={"name": f"{prefix}Ana", "type": "person"})).json()
    cat = (await client.post("/api/v1/entities", json={"name": f"{prefix}Pixel", "type": "cat"})).json()
    changed = await client.put(f"/api/v1/entities/{ana['id']}", json={"description": "likes hiking"})
    assert changed.status_code == 200
    relation = await client.post(
        "/api/v1/entities/relations", json={"source_id": ana["id"], "target_id": cat["id"], "type": "owns"}
    )
    assert relation.status_code == 201
    skill = (
        await client.post("/api/v1/skills", json={"name": f"{prefix}deploy", "steps": ["build", "ship"]})
    ).json()
    run = (await client.post(f"/api/v1/skills/{skill['id']}/executions", json={})).json()
    finished = await client.patch(f"/api/v1/skills/executions/{run['id']}", json={"status": "success"})
    assert finished.status_code == 200, finished.text
    return {"episodes": episodes.json()["items"], "ana": ana, "cat": cat, "skill": skill}


async def counts(client: httpx.AsyncClient) -> dict[str, int]:
    episodes = (await client.get("/api/v1/episodes", params={"limit": 500})).json()["items"]
    entities = (await client.get("/api/v1/entities", params={"limit": 500})).json()["items"]
    skills = (await client.get("/api/v1/skills", params={"limit": 500})).json()["items"]
    relations = 0
    for entity in entities:
        relations += len((await client.get(f"/api/v1/entities/{entity['id']}/relations")).json()["items"])
    return {
        "episodes": len(episodes),
        "entities": len(entities),
        "skills": len(skills),
        "relations": relations,
    }


async def test_status_checkpoint_and_history(memory_app: Callable[..., FastAPI]) -> None:
    async with running(memory_app()) as client:
        await seed(client)
        status = (await client.get(f"{P}/status")).json()
        assert status["database"] == "sqlite" and status["mode"] == "wal"
        assert status["synchronous"] == "normal" and status["wal_bytes"] > 0
        assert status["database_bytes"] > 0 and status["supports_backup"] is True
        for _ in range(50):  # the start-up integrity check runs in the background
            if status["integrity"]["ok"] is not None:
                break
            await asyncio.sleep(0.05)
            status = (await client.get(f"{P}/status")).json()
        assert status["integrity"]["ok"] is True and status["integrity"]["result"] == "ok"

        first = await client.post(f"{P}/checkpoint")
        assert first.status_code == 200
        done = first.json()
        assert done["reason"] == "manual" and not done["busy"]
        assert done["wal_frames"] > 0 and done["checkpointed_frames"] == done["wal_frames"]
        assert done["wal_bytes_before"] > 0 and done["wal_bytes_after"] == 0
        await client.post("/api/v1/episodes", json={"content": "one more"})
        second = (await client.post(f"{P}/checkpoint")).json()
        assert (await client.get(f"{P}/status")).json()["last_checkpoint"]["id"] == second["id"]

        page = (await client.get(f"{P}/checkpoints", params={"limit": 1})).json()
        assert [c["id"] for c in page["items"]] == [second["id"]] and page["next_cursor"]
        rest = (await client.get(f"{P}/checkpoints", params={"cursor": page["next_cursor"]})).json()
        assert [c["id"] for c in rest["items"]] == [done["id"]]


async def test_shutdown_checkpoints_and_periodic_checkpoints_run(memory_app: Callable[..., FastAPI]) -> None:
    app = memory_app(persistence={"checkpoint_interval_seconds": 0.2})
    async with running(app) as client:
        await seed(client)
        await asyncio.sleep(0.5)
    async with running(app) as client:
        reasons = [c["reason"] for c in (await client.get(f"{P}/checkpoints")).json()["items"]]
    assert "shutdown" in reasons and "periodic" in reasons


class ReplacedRecorder:
    """A third-party plugin keeping a cache of the database: told when a restore replaced it."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    @hookimpl
    async def database_replaced(self, app: FastAPI) -> None:
        async with app.state.registry.db.read() as session:
            self.calls.append(
                (await session.execute(text("SELECT count(*) FROM episodic_episodes"))).scalar_one()
            )


async def test_backup_and_atomic_restore_while_serving(
    memory_app: Callable[..., FastAPI], create_key: Any
) -> None:
    recorder = ReplacedRecorder()
    app = memory_app(plugins=[recorder])
    async with running(app) as client:
        await seed(client)
        admin = {"Authorization": f"Bearer {await create_key(app, scopes=('admin',))}"}
        writer = {"Authorization": f"Bearer {await create_key(app, scopes=('write',))}"}
        client.headers.update(admin)
        refused = await client.post(f"{P}/backup", headers=writer)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"

        made = await client.post(f"{P}/backup", headers=admin)
        assert made.status_code == 201, made.text
        backup = made.json()
        assert backup["integrity"] == "ok" and backup["tables"]["episodic_episodes"] == 2
        assert backup["revisions"]["episodic"] and "path" not in made.text
        before = await counts(client)

        # Writes after the backup (a key among them), and a search that loads the in-memory index.
        later_key = {"Authorization": f"Bearer {await create_key(app, scopes=('read',))}"}
        assert (await client.get("/api/v1/episodes", headers=later_key)).status_code == 200
        await seed(client, prefix="later ")
        found = await client.post("/api/v1/episodes/recall", json={"query": "later kitten", "mode": "vector"})
        assert "later" in found.json()["items"][0]["episode"]["content"]

        listed = (await client.get(f"{P}/backups", headers=admin)).json()
        assert [b["id"] for b in listed["items"]] == [backup["id"]]
        missing = await client.post(
            f"{P}/restore", json={"backup_id": "01a20000-0000-7000-8000-000000000000"}, headers=admin
        )
        assert missing.status_code == 404
        bad = await client.post(f"{P}/restore", json={"backup_id": "not-a-uuid"}, headers=admin)
        assert bad.status_code == 422

        # Readers keep being served during the restore.
        async def reader() -> list[int]:
            return [(await client.get("/api/v1/episodes", headers=writer)).status_code for _ in range(20)]

        restored, statuses = await asyncio.gather(
            client.post(f"{P}/restore", json={"backup_id": backup["id"]}, headers=admin), reader()
        )
        assert restored.status_code == 200, restored.text
        assert set(statuses) == {200}
        result = restored.json()
        assert result["integrity"] == "ok"
        assert result["tables"]["episodic_episodes"] == backup["tables"]["episodic_episodes"]
        assert result["tables"]["semantic_relations"] == backup["tables"]["semantic_relations"]
        assert await counts(client) == before

        # The in-memory vector index was rebuilt from the restored rows: a vector recall (k=10)
        # returns exactly the backup's episodes, nothing written after it.
        hits = (
            await client.post("/api/v1/episodes/recall", json={"query": "later kitten", "mode": "vector"})
        ).json()["items"]
        assert sorted(h["episode"]["content"] for h in hits) == [
            "Ana adopted a grey kitten named Pixel",
            "The budget review is due on Friday",
        ]
        # The key made after the backup is gone at once (not served from the auth cache); the
        # one made before still works, and the store still takes writes.
        assert (await client.get("/api/v1/episodes", headers=later_key)).status_code == 401
        assert (
            await client.post("/api/v1/episodes", json={"content": "after restore"}, headers=writer)
        ).status_code == 201
        reasons = [c["reason"] for c in (await client.get(f"{P}/checkpoints")).json()["items"]]
        assert reasons[0] == "restore"
        assert recorder.calls == [2]  # called once, after the restored contents were committed


@pytest.fixture
def import_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> SecretStr:
    """A second, empty store on the backend under test, for an import to fill: a SQLite file
    of its own, or a fresh PostgreSQL database (migrated by the app's start-up)."""
    if backend == "sqlite":
        return SecretStr(f"sqlite:///{tmp_path / 'target.db'}")
    return SecretStr(request.getfixturevalue("postgres_url"))


async def index_count(app: FastAPI) -> int:
    """The default tenant's entries in the memory index (sqlite_index or pgvector_index)."""
    return await app.state.registry.services["memory"].index.count("default")


async def test_export_then_import_elsewhere_is_idempotent(
    memory_app: Callable[..., FastAPI], backend: str, backend_database: str | None, import_target: SecretStr
) -> None:
    source = memory_app(database_url=on(backend_database))
    async with running(source) as client:
        seeded = await seed(client)
        exported = await client.get(f"{P}/export")
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("application/x-ndjson")
        source_counts = await counts(client)
        source_indexed = await index_count(source)
        assert source.state.registry.db.dialect == backend
    lines = [orjson.loads(line) for line in exported.content.splitlines()]
    assert lines[0]["record"] == "header" and lines[0]["format"] == "mnemogate.memories"
    kinds = [line["record"] for line in lines[1:]]
    assert kinds.count("episode") == 2 and kinds.count("entity") == 3  # Ana's two versions + Pixel
    assert kinds.count("relation") == 1 and kinds.count("skill") == 1 and kinds.count("execution") == 1

    target = memory_app(database_url=import_target)
    async with running(target) as other:
        assert target.state.registry.db.dialect == backend
        assert await counts(other) == {"episodes": 0, "entities": 0, "skills": 0, "relations": 0}
        assert await index_count(target) == 0
        first = await other.post(f"{P}/import", content=exported.content)
        assert first.status_code == 200, first.text
        assert first.json()["imported"] == {
            "episode": 2,
            "entity": 3,
            "relation": 1,
            "skill": 1,
            "execution": 1,
        }
        assert first.json()["rejected"] == 0
        assert await counts(other) == source_counts
        assert await index_count(target) == source_indexed > 0
        again = await other.post(f"{P}/import", content=exported.content)
        assert again.status_code == 200 and again.json()["rejected"] == 0
        assert await counts(other) == source_counts
        assert await index_count(target) == source_indexed  # upserted, not indexed twice

        # Listed under their own ids.
        listed = (await other.get("/api/v1/episodes")).json()["items"]
        assert sorted(e["id"] for e in listed) == sorted(e["id"] for e in seeded["episodes"])
        ana = (await other.get(f"/api/v1/entities/{seeded['ana']['id']}")).json()
        assert ana["version"] == 2 and ana["description"] == "likes hiking"
        history = (await other.get(f"/api/v1/entities/{seeded['ana']['id']}/history")).json()["items"]
        assert len(history) == 2
        skill = (await other.get(f"/api/v1/skills/{seeded['skill']['id']}")).json()
        assert skill["stats"]["successes"] == 1

        # Recallable through the index (pgvector_index on PostgreSQL): the kitten episode is the
        # vector search's and the keyword search's best hit, and the blend's; each item once.
        kitten = seeded["episodes"][0]["id"]
        for mode in ("vector", "keyword", "hybrid"):
            recall = {"query": "grey kitten", "mode": mode, "explain": True}
            hits = (await other.post("/api/v1/episodes/recall", json=recall)).json()["items"]
            ids = [h["episode"]["id"] for h in hits]
            assert kitten in ids and len(ids) == len(set(ids)), mode
            explained = next(h["explain"] for h in hits if h["episode"]["id"] == kitten)
            for search in ("vector", "keyword"):
                if mode in (search, "hybrid"):
                    assert explained[f"{search}_rank"] == 1 and explained[search] > 0, (mode, explained)
            if mode == "hybrid":
                assert ids[0] == kitten
        found = (await other.post("/api/v1/entities/search", json={"query": "hiking"})).json()["items"]
        assert found[0]["entity"]["id"] == seeded["ana"]["id"]
        matched = (await other.post("/api/v1/skills/match", json={"task": "deploy"})).json()["items"]
        assert [m["skill"]["id"] for m in matched] == [seeded["skill"]["id"]]

        # Streamed in small chunks (a line split across chunks), same result.
        chunks = [exported.content[i : i + 7] for i in range(0, len(exported.content), 7)]

        async def body() -> Any:
            for chunk in chunks:
                yield chunk

        chunked = await other.post(f"{P}/import", content=body())
        assert chunked.status_code == 200 and chunked.json()["rejected"] == 0
        assert await counts(other) == source_counts
        assert await index_count(target) == source_indexed


async def test_import_reports_bad_lines_and_writes_the_good_ones(
    memory_app: Callable[..., FastAPI], backend_database: str | None
) -> None:
    good = {
        "record": "episode",
        "id": "01a20000-0000-7000-8000-000000000001",
        "content": "a valid episode",
        "occurred_at": "2025-01-31T12:00:00Z",
        "importance": 0.5,
        "created_at": "2025-01-31T12:00:00Z",
        "updated_at": "2025-01-31T12:00:00Z",
    }
    lines = [
        orjson.dumps(good),
        b"{not json",
        orjson.dumps({**good, "id": "01a20000-0000-7000-8000-000000000002", "importance": 7}),
        orjson.dumps({"record": "mystery", "id": "x"}),
        orjson.dumps(
            {
                "record": "relation",
                "id": "01a20000-0000-7000-8000-000000000003",
                "source_id": "01a20000-0000-7000-8000-000000000004",
                "target_id": "01a20000-0000-7000-8000-000000000005",
                "type": "knows",
                "weight": 0.5,
                "created_at": "2025-01-31T12:00:00Z",
                "updated_at": "2025-01-31T12:00:00Z",
            }
        ),
        b"",
        orjson.dumps({**good, "id": "01a20000-0000-7000-8000-000000000006", "occurred_at": "yesterday"}),
        # Text PostgreSQL cannot store is refused by line on every database, in a batch whose
        # other records are written.
        orjson.dumps({**good, "id": "01a20000-0000-7000-8000-000000000009", "content": "nul\x00byte"}),
        orjson.dumps({**good, "id": "01a20000-0000-7000-8000-00000000000a", "metadata": {"note": ["\x00"]}}),
    ]
    async with running(memory_app(database_url=on(backend_database))) as client:
        answer = await client.post(f"{P}/import", content=b"\n".join(lines))
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["imported"] == {"episode": 1} and result["rejected"] == 7
        errors = {e["line"]: e["message"] for e in result["errors"]}
        assert sorted(errors) == [2, 3, 4, 5, 7, 8, 9]
        assert "importance" in errors[3] and "unknown" in errors[4] and "no entity" in errors[5]
        assert "occurred_at" in errors[7]
        assert errors[8].startswith("content: text holds a NUL character")
        assert errors[9].startswith("metadata.note.0: text holds a NUL character")
        assert [e["id"] for e in (await client.get("/api/v1/episodes")).json()["items"]] == [good["id"]]

        nothing = await client.post(f"{P}/import", content=b"\n".join(lines[1:5]))
        assert nothing.status_code == 422
        error = nothing.json()["error"]
        assert error["code"] == "validation_error" and "line 1" in error["message"]
        assert [d["line"] for d in error["details"]] == [1, 2, 3, 4]
        empty = await client.post(f"{P}/import", content=b"\n\n")
        assert empty.status_code == 400 and empty.json()["error"]["message"] == "the body holds no records"

    # A line over max_import_line_bytes is refused by number, whether it arrives in one chunk or
    # many; the lines around it are imported.
    long_line = orjson.dumps({**good, "id": "01a20000-0000-7000-8000-000000000007", "content": "x" * 3000})
    body = b"\n".join(
        [orjson.dumps({**good, "id": "01a20000-0000-7000-8000-000000000008"}), long_line, orjson.dumps(good)]
    )

    async def in_chunks() -> Any:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    async with running(
        memory_app(database_url=on(backend_database), persistence={"max_import_line_bytes": 1024})
    ) as client:
        for content in (body, in_chunks()):
            answer = await client.post(f"{P}/import", content=content)
            assert answer.status_code == 200, answer.text
            assert answer.json()["imported"] == {"episode": 2}
            assert answer.json()["errors"] == [{"line": 2, "message": "line longer than 1024 bytes"}]


async def test_tenants_export_only_their_own_and_cannot_take_foreign_ids(
    memory_app: Callable[..., FastAPI], create_key: Any, backend_database: str | None
) -> None:
    app = memory_app(database_url=on(backend_database))
    async with running(app) as client:
        acme = {"Authorization": f"Bearer {await create_key(app, tenant='acme')}"}
        other = {"Authorization": f"Bearer {await create_key(app, tenant='other')}"}
        made = await client.post("/api/v1/episodes", json={"content": "acme secret plan"}, headers=acme)
        exported = await client.get(f"{P}/export", headers=acme)
        assert b"acme secret plan" in exported.content
        assert b"acme secret plan" not in (await client.get(f"{P}/export", headers=other)).content
        stolen = await client.post(f"{P}/import", content=exported.content, headers=other)
        assert stolen.status_code == 422
        assert "another tenant" in stolen.json()["error"]["message"]
        kept = (await client.get(f"/api/v1/episodes/{made.json()['id']}", headers=acme)).json()
        assert kept["content"] == "acme secret plan"


async def test_postgresql_points_to_pg_dump_and_still_exports(
    memory_app: Callable[..., FastAPI], postgres_url: str
) -> None:
    app = memory_app(database_url=SecretStr(postgres_url))
    async with running(app) as client:
        status = (await client.get(f"{P}/status")).json()
        assert status["database"] == "postgresql" and status["supports_backup"] is False
        assert status["database_bytes"] > 0 and status["wal_bytes"] is None
        for method, path, body in (
            ("POST", "/checkpoint", None),
            ("POST", "/backup", None),
            ("POST", "/restore", {"backup_id": "01a20000-0000-7000-8000-000000000000"}),
        ):
            answer = await client.request(method, f"{P}{path}", json=body)
            assert answer.status_code == 409, (path, answer.text)
            assert "pg_dump" in answer.json()["error"]["message"]
            assert answer.json()["error"]["code"] == "unsupported_database"
        exported = await client.get(f"{P}/export")
        assert exported.status_code == 200
        assert orjson.loads(exported.content.splitlines()[0])["record"] == "header"
