"""Sessions: auto mode, X-Session-ID, activation, totals from the request log, bulk delete,
vacuum, diagnostics, tenant isolation, persistence across restarts, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, running


def chat_body(first: str, *more: str, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": first}]
    for text in more:
        messages += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": text}]
    return {"model": "mock/echo", "messages": messages, **extra}


async def chat(
    client: httpx.AsyncClient, *texts: str, session: str | None = None, **extra: Any
) -> httpx.Response:
    headers = {"X-Session-ID": session} if session else {}
    response = await client.post("/v1/chat/completions", json=chat_body(*texts, **extra), headers=headers)
    assert response.status_code in (200, 429, 502), response.text
    return response


def settings_with(mnemogate_settings: Any, **sessions: Any) -> Any:
    plugins = PluginsConfig.model_validate(
        {"sessions": sessions, "ratelimit": {"requests_per_minute": 100000}}
    )
    return mnemogate_settings.model_copy(update={"plugins": plugins})


async def test_auto_mode_follows_the_conversation(client: httpx.AsyncClient) -> None:
    first = (await chat(client, "plan a trip")).headers["x-session-id"]
    assert (await chat(client, "plan a trip", "to Oslo")).headers["x-session-id"] == first
    second = (await chat(client, "write a poem")).headers["x-session-id"]
    assert second != first
    active = (await client.get("/api/sessions/active")).json()
    assert active["id"] == second and active["active"] is True
    listed = (await client.get("/api/sessions")).json()["items"]
    assert [s["id"] for s in listed] == [second, first]
    totals = (await client.get(f"/api/sessions/{first}")).json()
    # The mock counts words: "plan a trip", then "plan a trip" + "ok" + "to Oslo".
    assert totals["requests"] == 2 and totals["tokens_in"] == 3 + 6 and totals["tokens_out"] == 3 + 2
    assert totals["active"] is False and totals["cost_usd"] == 0.0


async def test_an_idle_gap_starts_a_new_session(mnemogate_settings: Any) -> None:
    app = build_app(settings_with(mnemogate_settings, idle_minutes=0.002))
    async with running(app) as client:
        first = (await chat(client, "same task")).headers["x-session-id"]
        await asyncio.sleep(0.2)
        assert (await chat(client, "same task")).headers["x-session-id"] != first


async def test_x_session_id_names_sessions_and_leaves_the_active_one_alone(client: httpx.AsyncClient) -> None:
    active = (await chat(client, "hello")).headers["x-session-id"]
    named = (await chat(client, "other", session="refactor-auth")).headers["x-session-id"]
    assert (await chat(client, "again", session="refactor-auth")).headers["x-session-id"] == named
    assert named != active
    session = (await client.get(f"/api/sessions/{named}")).json()
    assert session["name"] == "refactor-auth" and session["requests"] == 2
    explicit = "0b7e5b1a-7a43-4c4b-9e5e-51c1c1b0a001"
    assert (await chat(client, "x", session=explicit)).headers["x-session-id"] == explicit
    assert (await client.get("/api/sessions/active")).json()["id"] == active


async def test_manual_mode_create_and_activate(client: httpx.AsyncClient) -> None:
    status = (await client.post("/api/sessions/toggle-auto", json={"enabled": False})).json()
    assert status["enabled"] is False
    first = (await chat(client, "one")).headers["x-session-id"]
    assert (await chat(client, "something else entirely")).headers["x-session-id"] == first
    created = await client.post("/api/sessions", json={"name": "sprint 12"})
    assert created.status_code == 201 and created.json()["active"] is True
    assert (await chat(client, "three")).headers["x-session-id"] == created.json()["id"]
    activated = await client.post(f"/api/sessions/{first}/activate")
    assert activated.status_code == 200 and activated.json()["active"] is True
    assert (await chat(client, "four")).headers["x-session-id"] == first
    flipped = (await client.post("/api/sessions/toggle-auto")).json()
    assert flipped["enabled"] is True and (await client.get("/api/sessions/auto-status")).json() == flipped
    # Activated by hand, a session adopts the next conversation even in auto mode.
    await client.post(f"/api/sessions/{created.json()['id']}/activate")
    assert (await chat(client, "brand new topic")).headers["x-session-id"] == created.json()["id"]


async def test_bad_session_requests_get_clear_errors(client: httpx.AsyncClient) -> None:
    # Session ids in paths must be UUIDs (the uuid converter): anything else is no route at all.
    assert (await client.get("/api/sessions/not-a-uuid")).status_code == 404
    missing = await client.get("/api/sessions/0b7e5b1a-7a43-4c4b-9e5e-51c1c1b0a0ff")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert (await client.get("/api/sessions/active")).status_code == 404
    refused = await client.delete("/api/sessions")
    assert refused.status_code == 400 and "all=true" in refused.json()["error"]["message"]
    assert (await client.post("/api/sessions", json={"name": "x" * 500})).status_code == 422


async def test_bulk_delete_by_ids_by_age_and_everything(client: httpx.AsyncClient) -> None:
    ids = [(await chat(client, f"topic {n}")).headers["x-session-id"] for n in range(4)]
    gone = (await client.delete("/api/sessions", params={"ids": ids[:2]})).json()
    assert gone == {"sessions": 2, "requests": 2}
    remaining = {s["id"] for s in (await client.get("/api/sessions")).json()["items"]}
    assert remaining == set(ids[2:])
    old = (await client.delete("/api/sessions", params={"before": "2000-01-01T00:00:00Z"})).json()
    assert old == {"sessions": 0, "requests": 0}
    everything = (await client.delete("/api/sessions", params={"all": "true"})).json()
    assert everything == {"sessions": 2, "requests": 2}
    assert (await client.get("/api/sessions")).json()["items"] == []
    assert (await client.get("/api/sessions/active")).status_code == 404
    diagnostic = (await client.get("/api/sessions/diagnostic")).json()
    assert all(finding["count"] == 0 for finding in diagnostic["inconsistencies"])


async def test_every_request_is_logged_failures_included(client: httpx.AsyncClient) -> None:
    await chat(client, "fine")
    await chat(client, "fails", mock={"status": 500})
    await chat(client, "limited", mock={"status": 429, "retry_after": 60})
    rows = (await client.get("/api/export/json")).json()["requests"]
    assert [(r["status"], r["provider"], r["model"]) for r in rows] == [
        (200, "mock", "echo"),
        (502, "mock", "echo"),
        (429, "mock", "echo"),
    ]
    ok, failed, limited = rows
    assert ok["tokens_in"] == 1 and ok["tokens_out"] == 1 and ok["tokens_counted"] is False
    assert ok["latency_ms"] >= ok["overhead_ms"] >= 0 and ok["ttft_ms"] is not None
    assert failed["error"].startswith("upstream_error") and failed["tokens_in"] is None
    assert limited["error"].startswith("rate_limit_exceeded")


async def test_tokens_are_counted_offline_when_the_upstream_sends_no_usage(client: httpx.AsyncClient) -> None:
    async with client.stream(
        "POST", "/v1/chat/completions", json=chat_body("count these words", stream=True)
    ) as r:
        assert r.status_code == 200
        await r.aread()
    row = (await client.get("/api/export/json")).json()["requests"][0]
    # cl100k_base: "count these words" is 3 tokens; 3 per message and 3 priming the reply.
    assert row["tokens_counted"] is True and row["tokens_in"] == 3 + 3 + 3 and row["tokens_out"] == 3
    assert row["stream"] is True


async def test_vacuum_and_diagnostic(create_key: Any, make_app: Any) -> None:
    app = make_app()
    async with running(app) as client:
        for n in range(20):
            await chat(client, f"conversation {n}")
        await client.delete("/api/sessions", params={"all": "true"})
        client.headers["Authorization"] = f"Bearer {await create_key(app, scopes=('write',))}"
        assert (await client.post("/api/sessions/vacuum")).status_code == 403
        client.headers["Authorization"] = f"Bearer {await create_key(app, scopes=('admin',))}"
        vacuumed = (await client.post("/api/sessions/vacuum")).json()
        assert vacuumed["database"] == "sqlite" and vacuumed["bytes_after"] <= vacuumed["bytes_before"]
        await chat(client, "after vacuum")
        diagnostic = (await client.get("/api/sessions/diagnostic")).json()
    assert diagnostic["rows"] == {"sessions": 1, "requests": 1, "tenants": 1}
    assert diagnostic["tenant_rows"] == {"sessions": 1, "requests": 1}
    assert diagnostic["size_bytes"] > 0 and diagnostic["pending_log_records"] == 0
    assert {f["kind"]: f["count"] for f in diagnostic["inconsistencies"]} == {
        "orphan_requests": 0,
        "dangling_active_sessions": 0,
        "sessions_used_before_created": 0,
        "requests_without_session": 0,
    }


async def test_tenants_see_only_their_own_sessions(make_app: Any, create_key: Any) -> None:
    app = make_app()
    async with running(app) as http:
        acme_key = await create_key(app, tenant="acme")
        globex_key = await create_key(app, tenant="globex")
        acme = {"Authorization": f"Bearer {acme_key}"}
        globex = {"Authorization": f"Bearer {globex_key}"}
        body = chat_body("shared words")
        a = await http.post("/v1/chat/completions", json=body, headers={**acme, "X-Session-ID": "same-label"})
        g = await http.post(
            "/v1/chat/completions", json=body, headers={**globex, "X-Session-ID": "same-label"}
        )
        assert a.headers["x-session-id"] != g.headers["x-session-id"]
        acme_active = (await http.post("/v1/chat/completions", json=body, headers=acme)).headers[
            "x-session-id"
        ]
        assert (await http.get(f"/api/sessions/{acme_active}", headers=globex)).status_code == 404
        assert (await http.post(f"/api/sessions/{acme_active}/activate", headers=globex)).status_code == 404
        assert (await http.delete("/api/sessions", params={"all": "true"}, headers=globex)).json()[
            "sessions"
        ] == 1
        acme_sessions = (await http.get("/api/sessions", headers=acme)).json()["items"]
        assert len(acme_sessions) == 2
        assert len((await http.get("/api/export/json", headers=acme)).json()["requests"]) == 2
        assert (await http.get("/api/export/json", headers=globex)).json()["requests"] == []


async def test_the_active_session_survives_a_restart(make_app: Any) -> None:
    async with running(make_app()) as client:
        await client.post("/api/sessions/toggle-auto", json={"enabled": False})
        first = (await chat(client, "long task")).headers["x-session-id"]
    async with running(make_app()) as client:
        assert (await client.get("/api/sessions/auto-status")).json()["enabled"] is False
        assert (await chat(client, "continuing")).headers["x-session-id"] == first
        assert (await client.get(f"/api/sessions/{first}")).json()["requests"] == 2


@pytest.mark.postgres
async def test_sessions_on_postgresql(make_app: Any, postgres_url: str) -> None:
    async with running(make_app(database_url=SecretStr(postgres_url))) as client:
        first = (await chat(client, "pg one")).headers["x-session-id"]
        await chat(client, "pg one", "more")
        await chat(client, "pg two", session="named")
        totals = (await client.get(f"/api/sessions/{first}")).json()
        assert totals["requests"] == 2
        assert (await client.post("/api/sessions/vacuum")).json()["database"] == "postgresql"
        diagnostic = (await client.get("/api/sessions/diagnostic")).json()
        assert diagnostic["rows"]["requests"] == 3 and diagnostic["size_bytes"] > 0
        csv = (await client.get("/api/export/csv", params={"what": "sessions"})).text
        assert len(csv.strip().splitlines()) == 1 + 2
