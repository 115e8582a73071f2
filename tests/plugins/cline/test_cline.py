"""The Cline plugin against task folders in Cline's own format: status, import into sessions and
episodes (idempotent, only changed tasks again, bad files reported), usage per task, day, model."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app, running
from mnemogate.plugins.cline.service import default_data_dir

DAY1 = 1_735_689_600_000  # 2025-01-01T00:00:00Z in milliseconds, as Cline stamps messages
DAY2 = DAY1 + 86_400_000


def api_request(ts: int, tokens_in: int, tokens_out: int, cost: float, **extra: Any) -> dict[str, Any]:
    info = {"request": "<task>...</task>", "tokensIn": tokens_in, "tokensOut": tokens_out}
    info |= {"cacheWrites": tokens_in // 2, "cacheReads": tokens_in * 2, "cost": cost}
    return {"ts": ts, "type": "say", "say": "api_req_started", "text": json.dumps(info), **extra}


def write_task(root: Path, task_id: str, history: Any, ui: Any, metadata: Any = None) -> Path:
    folder = root / "tasks" / task_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (
        ("api_conversation_history.json", history),
        ("ui_messages.json", ui),
        ("task_metadata.json", metadata),
    ):
        if content is not None:
            (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return folder


@pytest.fixture
def cline_dir(tmp_path: Path) -> Path:
    root = tmp_path / "globalStorage" / "saoudrizwan.claude-dev"
    # An older task: no ts or model in the messages; the model comes from task_metadata.json.
    write_task(
        root,
        str(DAY1),
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "<task>Fix the login bug in auth.py</task>"}],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "I will read the file first."},
                    {"type": "tool_use", "id": "t1", "name": "read_file", "input": {"path": "auth.py"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "def login(): ..."}],
            },
        ],
        [
            {"ts": DAY1, "type": "say", "say": "task", "text": "Fix the login bug in auth.py"},
            api_request(DAY1 + 1000, 1000, 200, 0.01),
            {"ts": DAY1 + 2000, "type": "say", "say": "text", "text": "I will read the file first."},
            api_request(DAY1 + 3000, 3000, 100, 0.02),
        ],
        {
            "model_usage": [
                {"ts": DAY1, "model_id": "claude-3-5-sonnet", "model_provider_id": "anthropic", "mode": "act"}
            ]
        },
    )
    # A newer task: messages carry ts and modelInfo.
    write_task(
        root,
        str(DAY2),
        [
            {"role": "user", "content": "Write release notes", "ts": DAY2},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "Here are the release notes for 2.0"}],
                "ts": DAY2 + 500,
                "modelInfo": {"modelId": "gpt-4o", "providerId": "openai"},
            },
        ],
        [
            {"ts": DAY2, "type": "say", "say": "task", "text": "Write release notes"},
            api_request(DAY2 + 400, 500, 300, 0.005, modelInfo={"modelId": "gpt-4o", "providerId": "openai"}),
        ],
    )
    # Broken tasks: reported, not fatal.
    write_task(root, "1735800000000", "{not json", [])
    write_task(root, "1735800000001", {"role": "user"}, None)
    (root / "tasks" / "1735800000002").mkdir()
    return root


@pytest.fixture
def cline_app(mnemogate_settings: Settings) -> Callable[..., FastAPI]:
    def make(database_url: str | None = None, **cline: Any) -> FastAPI:
        tables = {"memory": {"embedder": "hashing"}, "cline": cline}
        update: dict[str, Any] = {"plugins": PluginsConfig.model_validate(tables)}
        if database_url is not None:
            update["database_url"] = SecretStr(database_url)
        return build_app(mnemogate_settings.model_copy(update=update))

    return make


async def test_import_makes_sessions_episodes_and_usage_and_is_idempotent(
    cline_app: Callable[..., FastAPI], cline_dir: Path
) -> None:
    async with running(cline_app(data_dir=str(cline_dir))) as client:
        status = (await client.get("/api/cline/status")).json()
        assert status["found"] is True and status["data_dir_source"] == "configured"
        assert status["tasks_seen"] == 5 and status["tasks_imported"] == 0 and status["last_import"] is None

        first = await client.post("/api/cline/import")
        assert first.status_code == 200, first.text
        result = first.json()
        assert result["tasks_seen"] == 5 and result["imported"] == 2 and result["failed"] == 3
        assert result["sessions_created"] == 2 and result["episodes"] == 5 and result["requests"] == 3
        problems = {p["task_id"]: p for p in result["problems"]}
        assert problems["1735800000000"]["file"] == "api_conversation_history.json"
        assert problems["1735800000000"]["message"] == "not valid JSON"
        assert "array" in problems["1735800000001"]["message"]
        assert problems["1735800000002"]["file"] is None
        assert all(str(cline_dir) not in p["message"] for p in result["problems"])

        sessions = (await client.get("/api/sessions")).json()["items"]
        names = sorted(s["name"] for s in sessions)
        assert names == ["Cline: Fix the login bug in auth.py", "Cline: Write release notes"]
        episodes = (await client.get("/api/v1/episodes", params={"limit": 100})).json()["items"]
        assert len(episodes) == 5
        notes = next(e for e in episodes if e["content"] == "Here are the release notes for 2.0")
        assert notes["role"] == "assistant" and notes["occurred_at"] == "2025-01-02T00:00:00.500000Z"
        assert notes["metadata"] == {"source": "cline", "task_id": str(DAY2), "message": 1}
        assert any(e["content"].startswith("[tool result] def login()") for e in episodes)
        hits = (await client.post("/api/v1/episodes/recall", json={"query": "login bug auth.py"})).json()[
            "items"
        ]
        assert hits and "login bug" in hits[0]["episode"]["content"]

        # Again: nothing changed, nothing written twice.
        again = (await client.post("/api/cline/import")).json()
        assert again["imported"] == 0 and again["unchanged"] == 2 and again["sessions_created"] == 0
        forced = (
            await client.post("/api/cline/import", json={"force": True, "task_ids": [str(DAY1)]})
        ).json()
        assert forced["imported"] == 1 and forced["sessions_created"] == 0
        assert len((await client.get("/api/v1/episodes", params={"limit": 100})).json()["items"]) == 5
        assert len((await client.get("/api/sessions")).json()["items"]) == 2

        # Cline continues a task: its new message and request come in, the rest stays single.
        folder = cline_dir / "tasks" / str(DAY2)
        history = json.loads((folder / "api_conversation_history.json").read_text())
        history.append({"role": "user", "content": "Add a section on upgrades", "ts": DAY2 + 900})
        (folder / "api_conversation_history.json").write_text(json.dumps(history))
        ui = json.loads((folder / "ui_messages.json").read_text())
        ui.append(
            api_request(DAY2 + 950, 700, 50, 0.004, modelInfo={"modelId": "gpt-4o", "providerId": "openai"})
        )
        (folder / "ui_messages.json").write_text(json.dumps(ui))
        os.utime(folder / "ui_messages.json", ns=(DAY2 * 10**6, DAY2 * 10**6))
        grown = (await client.post("/api/cline/import")).json()
        assert grown["imported"] == 1 and grown["unchanged"] == 1 and grown["episodes"] == 3
        assert len((await client.get("/api/v1/episodes", params={"limit": 100})).json()["items"]) == 6

        status = (await client.get("/api/cline/status")).json()
        assert status["tasks_imported"] == 2 and status["last_import"]["tasks"] == 1

        by_model = (await client.get("/api/cline/usage", params={"group_by": "model"})).json()
        models = {u["key"]: u for u in by_model["items"]}
        assert set(models) == {"claude-3-5-sonnet", "gpt-4o"}
        assert (
            models["claude-3-5-sonnet"]["requests"] == 2 and models["claude-3-5-sonnet"]["tokens_in"] == 4000
        )
        assert (
            models["claude-3-5-sonnet"]["cache_writes"] == 2000
            and models["claude-3-5-sonnet"]["cache_reads"] == 8000
        )
        assert models["gpt-4o"]["tokens_out"] == 350 and models["gpt-4o"]["cost_usd"] == pytest.approx(0.009)
        assert by_model["totals"]["requests"] == 4 and by_model["totals"]["cost_usd"] == pytest.approx(0.039)
        by_day = (await client.get("/api/cline/usage", params={"group_by": "day"})).json()
        assert [(u["key"], u["requests"]) for u in by_day["items"]] == [("2025-01-01", 2), ("2025-01-02", 2)]
        by_task = (await client.get("/api/cline/usage", params={"group_by": "task", "limit": 1})).json()
        assert [u["key"] for u in by_task["items"]] == [str(DAY1)] and by_task["next_cursor"]
        later = await client.get("/api/cline/usage", params={"since": "2025-01-02T00:00:00Z"})
        assert later.json()["totals"]["requests"] == 2


async def test_tenants_and_scopes(
    cline_app: Callable[..., FastAPI], cline_dir: Path, create_key: Any
) -> None:
    app = cline_app(data_dir=str(cline_dir), episodes=False)
    async with running(app) as client:
        admin = {"Authorization": f"Bearer {await create_key(app, tenant='acme', scopes=('admin',))}"}
        writer = {"Authorization": f"Bearer {await create_key(app, tenant='other', scopes=('write',))}"}
        refused = await client.post("/api/cline/import", headers=writer)
        assert refused.status_code == 403
        done = (await client.post("/api/cline/import", headers=admin)).json()
        assert done["imported"] == 2 and done["episodes"] == 0
        mine = (await client.get("/api/cline/usage", headers=admin)).json()["totals"]
        assert mine["requests"] == 3
        theirs = (await client.get("/api/cline/usage", headers=writer)).json()
        assert theirs["items"] == [] and theirs["totals"]["requests"] == 0
        assert (await client.get("/api/cline/status", headers=writer)).json()["tasks_imported"] == 0
        bad = await client.post("/api/cline/import", json={"task_ids": ["../etc"]}, headers=admin)
        assert bad.status_code == 422


async def test_missing_data_directory_is_reported(cline_app: Callable[..., FastAPI], tmp_path: Path) -> None:
    async with running(cline_app(data_dir=str(tmp_path / "nowhere"))) as client:
        status = (await client.get("/api/cline/status")).json()
        assert status["found"] is False and status["tasks_seen"] == 0
        answer = await client.post("/api/cline/import")
        assert answer.status_code == 404
        assert "plugins.cline.data_dir" in answer.json()["error"]["message"]
        assert "nowhere" not in answer.text


def test_default_data_directory_per_operating_system() -> None:
    home = Path("/home/ana")
    tail = Path("Code/User/globalStorage/saoudrizwan.claude-dev")
    assert default_data_dir("linux", {}, home) == home / ".config" / tail
    assert default_data_dir("linux", {"XDG_CONFIG_HOME": "/cfg"}, home) == Path("/cfg") / tail
    assert default_data_dir("darwin", {}, home) == home / "Library/Application Support" / tail
    assert default_data_dir("win32", {"APPDATA": "C:/Users/ana/AppData/Roaming"}, home) == (
        Path("C:/Users/ana/AppData/Roaming") / tail
    )


async def test_usage_rejects_bad_parameters(cline_app: Callable[..., FastAPI], cline_dir: Path) -> None:
    async with running(cline_app(data_dir=str(cline_dir))) as client:
        assert (await client.get("/api/cline/usage", params={"group_by": "week"})).status_code == 422
        assert (await client.get("/api/cline/usage", params={"since": "yesterday"})).status_code == 422
        assert (await client.post("/api/cline/import", json={"force": "yes"})).status_code == 422
        empty: httpx.Response = await client.get("/api/cline/usage")
        assert empty.json()["items"] == [] and empty.json()["totals"]["cost_usd"] == 0


async def test_sessions_and_usage_on_postgresql(
    cline_app: Callable[..., FastAPI], cline_dir: Path, postgres_url: str
) -> None:
    async with running(cline_app(postgres_url, data_dir=str(cline_dir), episodes=False)) as client:
        for _ in range(2):
            result = (await client.post("/api/cline/import", json={"force": True})).json()
            assert result["imported"] == 2 and result["requests"] == 3
        sessions = (await client.get("/api/sessions")).json()["items"]
        assert sorted(s["name"] for s in sessions) == [
            "Cline: Fix the login bug in auth.py",
            "Cline: Write release notes",
        ]
        by_day = (await client.get("/api/cline/usage", params={"group_by": "day"})).json()
        assert [(u["key"], u["tokens_in"]) for u in by_day["items"]] == [
            ("2025-01-01", 4000),
            ("2025-01-02", 500),
        ]
        assert (await client.get("/api/cline/status")).json()["tasks_imported"] == 2
