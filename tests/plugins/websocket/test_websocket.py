"""Live events over WebSockets: gateway request lifecycle on /ws, the activity feed on
/ws/events, health on /ws/health; each tenant sees only its own traffic."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, served


def app_with(mnemogate_settings: Any, **websocket: Any) -> Any:
    plugins = PluginsConfig.model_validate({"websocket": websocket})
    return build_app(mnemogate_settings.model_copy(update={"plugins": plugins}))


async def next_event(ws: Any, kind: str | None = None) -> dict[str, Any]:
    while True:
        event = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        if kind is None or event["type"] == kind:
            return event


def ws_url(base: str, path: str, key: str | None = None) -> str:
    url = base.replace("http://", "ws://") + path
    return f"{url}?api_key={key}" if key else url


async def test_gateway_events_follow_a_request(mnemogate_settings: Any) -> None:
    app = app_with(mnemogate_settings, progress_interval_seconds=0.05)
    async with (
        served(app) as base,
        connect(ws_url(base, "/ws")) as ws,
        httpx.AsyncClient(base_url=base) as http,
    ):
        assert (await next_event(ws))["type"] == "subscribed"
        body = {"model": "mock/echo", "messages": [{"role": "user", "content": "one two three four five"}]}
        await http.post("/v1/chat/completions", json=body)
        started = await next_event(ws)
        finished = await next_event(ws)
        assert started["type"] == "request.started" and started["data"]["model"] == "mock/echo"
        assert finished["type"] == "request.finished"
        data = finished["data"]
        assert (
            data["provider"] == "mock" and data["status"] == 200 and data["usage"]["completion_tokens"] == 5
        )
        assert data["session_id"] == started["data"]["session_id"] and data["overhead_ms"] >= 0

        slow = {**body, "stream": True, "mock": {"tokens_per_second": 20}}
        await http.post("/v1/chat/completions", json=slow)
        progress = await next_event(ws, "stream.progress")
        assert progress["data"]["blocks"] >= 1 and progress["data"]["bytes"] > 0
        assert (await next_event(ws, "request.finished"))["data"]["stream"] is True

        await http.post("/v1/chat/completions", json={**body, "mock": {"status": 503}})
        failed = await next_event(ws, "request.failed")
        assert failed["data"]["status"] == 502 and failed["data"]["error"]["code"] == "upstream_error"


async def test_the_events_feed_and_health(mnemogate_settings: Any) -> None:
    app = app_with(mnemogate_settings, health_interval_seconds=0.1)
    async with served(app) as base, httpx.AsyncClient(base_url=base) as http:
        async with connect(ws_url(base, "/ws/events")) as feed:
            await next_event(feed, "subscribed")
            await http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
            kinds = {(await next_event(feed))["type"], (await next_event(feed))["type"]}
            assert kinds == {"gateway.request.finished", "session.created"}
        async with connect(ws_url(base, "/ws/health")) as health:
            report = await next_event(health, "health")
            assert report["data"]["status"] == "ok" and report["data"]["database"] is True
            assert report["data"]["websocket_clients"] >= 1
        async with connect(ws_url(base, "/ws/learning")) as learning:
            assert (await next_event(learning))["type"] == "subscribed"


async def test_tenants_only_see_their_own_gateway_events(make_app: Any, create_key: Any) -> None:
    app = make_app()
    async with served(app) as base:
        acme = await create_key(app, tenant="acme")
        globex = await create_key(app, tenant="globex")
        async with connect(ws_url(base, "/ws", globex)) as ws, httpx.AsyncClient(base_url=base) as http:
            await next_event(ws, "subscribed")
            body = {"messages": [{"role": "user", "content": "private"}]}
            await http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {acme}"})
            mine = await http.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {globex}"}
            )
            # acme's request came first: had it leaked, it would be the first event here.
            first, second = await next_event(ws), await next_event(ws)
            assert (first["type"], second["type"]) == ("request.started", "request.finished")
            assert first["data"]["session_id"] == second["data"]["session_id"] == mine.headers["x-session-id"]
