"""Exports of the request log and sessions: CSV and JSON, streamed, filtered, per tenant."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, running, served


async def chat(client: httpx.AsyncClient, text: str, model: str = "mock/echo", **headers: str) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    response = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200
    return response.headers["x-session-id"]


async def test_csv_export_streams_the_request_log_with_filters(client: httpx.AsyncClient) -> None:
    started = datetime.now(UTC)
    first = await chat(client, "alpha")
    await chat(client, "alpha", model="mock/scripted")
    second = await chat(client, "beta")
    async with client.stream("GET", "/api/export/csv") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        text = (await response.aread()).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["session_id"], r["model"], r["status"]) for r in rows] == [
        (first, "echo", "200"),
        (first, "scripted", "200"),
        (second, "echo", "200"),
    ]
    assert set(rows[0]) >= {"tokens_in", "tokens_out", "cost_usd", "latency_ms", "ttft_ms", "overhead_ms"}

    async def export(**params: Any) -> list[dict[str, str]]:
        response = await client.get("/api/export/csv", params=params)
        assert response.status_code == 200, response.text
        return list(csv.DictReader(io.StringIO(response.text)))

    assert len(await export(session_id=first)) == 2
    assert len(await export(model="scripted")) == 1 and len(await export(model="mock/echo")) == 2
    assert await export(model="other/echo") == []
    later = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    assert len(await export(since=started.isoformat())) == 3 and await export(since=later) == []
    assert len(await export(until=later)) == 3
    sessions = await export(what="sessions")
    assert [(s["id"], s["requests"]) for s in sessions] == [(first, "2"), (second, "1")]
    assert [s["id"] for s in await export(what="sessions", model="scripted")] == [first]


async def test_json_export_is_one_document(client: httpx.AsyncClient) -> None:
    session = await chat(client, "gamma")
    await chat(client, "delta")
    document = orjson.loads((await client.get("/api/export/json", params={"session_id": session})).content)
    assert document["filters"] == {"session_id": session}
    assert [s["id"] for s in document["sessions"]] == [session]
    assert [r["session_id"] for r in document["requests"]] == [session]
    assert document["exported_at"].endswith("+00:00") or document["exported_at"].endswith("Z")
    everything = (await client.get("/api/export/json")).json()
    assert len(everything["sessions"]) == 2 and len(everything["requests"]) == 2


async def test_large_exports_arrive_in_pieces(mnemogate_settings: Any) -> None:
    plugins = PluginsConfig.model_validate({"ratelimit": {"requests_per_minute": 100000}})
    app = build_app(mnemogate_settings.model_copy(update={"plugins": plugins}))
    async with served(app) as base, httpx.AsyncClient(base_url=base) as client:
        for n in range(450):
            await chat(client, f"message {n % 3}")
        pieces = 0
        async with client.stream("GET", "/api/export/csv") as response:
            async for _ in response.aiter_raw():
                pieces += 1
    assert pieces >= 3  # rows go out in batches as they are read, not as one body


async def test_bad_filters_and_a_missing_sessions_plugin(client: httpx.AsyncClient, make_client: Any) -> None:
    naive = await client.get("/api/export/csv", params={"since": "2025-01-01T00:00:00"})
    assert naive.status_code == 422 and "time zone" in naive.json()["error"]["message"]
    assert (await client.get("/api/export/csv", params={"what": "keys"})).status_code == 422
    assert (await client.get("/api/export/json", params={"session_id": "nope"})).status_code == 422
    async with make_client(disabled=["sessions"]) as without:
        refused = await without.get("/api/export/json")
        assert refused.status_code == 503 and "sessions plugin" in refused.json()["error"]["message"]


async def test_exports_are_confined_to_the_tenant(make_app: Any, create_key: Any) -> None:
    app = make_app()
    async with running(app) as http:
        acme = {"Authorization": f"Bearer {await create_key(app, tenant='acme')}"}
        globex = {"Authorization": f"Bearer {await create_key(app, tenant='globex')}"}
        await chat(http, "acme secret plans", **acme)
        await chat(http, "globex things", **globex)
        acme_csv = (await http.get("/api/export/csv", headers=acme)).text
        globex_json = (await http.get("/api/export/json", headers=globex)).json()
    assert len(acme_csv.strip().splitlines()) == 2
    assert len(globex_json["requests"]) == 1 and len(globex_json["sessions"]) == 1
