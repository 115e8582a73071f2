"""The event bus and WebSocket channels, over a real server and a real WebSocket client."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from fastapi import APIRouter
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from mnemogate.core.dependencies import PrincipalDep, RegistryDep
from mnemogate.core.events import Event, InProcessEventBus
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.testing import served


class Announcer:
    plugin_name = "announcer"

    @hookimpl
    def register_ws_channels(self, register: Any) -> None:
        register("news", scope="read", description="announcements")

    @hookimpl
    def register_routes(self, register: Any) -> None:
        router = APIRouter()

        @router.post("/announce")
        async def announce(
            body: dict[str, Any], principal: PrincipalDep, registry: RegistryDep
        ) -> dict[str, bool]:
            await registry.events.publish("news", "announced", principal.tenant, body)
            return {"ok": True}

        register(router, scope="write")


async def receive_json(ws: Any) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout=5))


def ws_url(base: str, path: str, key: str | None = None) -> str:
    url = base.replace("http://", "ws://") + path
    return f"{url}?api_key={key}" if key else url


async def test_channel_is_mounted_and_listed(make_client: Any) -> None:
    async with make_client(plugins=[Announcer()]) as client:
        routes = (await client.get("/api/v1/routes", params={"limit": 500})).json()["items"]
        assert {
            "method": "GET",
            "path": "/ws/news",
            "plugin": "announcer",
            "scope": "read",
            "kind": "websocket",
            "duplicate": False,
        } in routes


async def test_events_reach_subscribers(make_app: Any) -> None:
    async with served(make_app(plugins=[Announcer()])) as base, connect(ws_url(base, "/ws/news")) as ws:
        assert (await receive_json(ws))["type"] == "subscribed"
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/announce", json={"text": "hello"})).status_code == 200
        event = await receive_json(ws)
        assert (
            event["channel"] == "news" and event["type"] == "announced" and event["data"] == {"text": "hello"}
        )
        assert event["ts"].endswith("+00:00")
        await ws.send('{"type": "ping"}')
        assert (await receive_json(ws)) == {"type": "pong"}


async def test_channels_need_a_key_and_only_carry_the_callers_tenant(make_app: Any) -> None:
    from mnemogate.plugins.auth.models import KeyCreate

    app = make_app(plugins=[Announcer()])
    async with served(app) as base, httpx.AsyncClient(base_url=base) as http:
        keys = {}
        for tenant in ("a", "b"):
            # As `mnemogate keys create --tenant ...` does: an operator makes keys for two tenants.
            made = await app.state.registry.services["auth.keys"].create(
                KeyCreate(name=tenant, scopes=["write"], tenant=tenant)
            )
            keys[tenant] = made.key
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(base, "/ws/news")):
                pass
        assert refused.value.response.status_code in (401, 403)
        async with connect(ws_url(base, "/ws/news", keys["a"])) as ws:
            assert (await receive_json(ws))["type"] == "subscribed"
            for tenant in ("b", "a"):
                posted = await http.post(
                    "/announce", json={"from": tenant}, headers={"Authorization": f"Bearer {keys[tenant]}"}
                )
                assert posted.status_code == 200
            assert (await receive_json(ws))["data"] == {"from": "a"}, (
                "tenant b's event must not reach tenant a"
            )


async def test_a_plugin_can_replace_the_event_bus(make_app: Any) -> None:
    published: list[Event] = []

    class RecordingBus(InProcessEventBus):
        async def publish(self, event: Event) -> None:
            published.append(event)
            await super().publish(event)

    class BusPlugin:
        plugin_name = "busplugin"

        @hookimpl
        def register_event_bus(self, register: Any) -> None:
            register(lambda settings: RecordingBus())

    async with (
        served(make_app(plugins=[Announcer(), BusPlugin()])) as base,
        connect(ws_url(base, "/ws/news")) as ws,
    ):
        await receive_json(ws)
        async with httpx.AsyncClient(base_url=base) as http:
            await http.post("/announce", json={"n": 1})
        assert (await receive_json(ws))["data"] == {"n": 1}
    assert [(e.channel, e.type, e.tenant) for e in published] == [("news", "announced", "default")]


async def test_open_sockets_are_closed_when_the_server_stops(make_app: Any) -> None:
    async with served(make_app(plugins=[Announcer()])) as base:
        ws = await connect(ws_url(base, "/ws/news"))
        await receive_json(ws)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)


def test_slow_subscribers_lose_their_oldest_events_not_the_bus() -> None:
    from mnemogate.core.events import Subscription

    subscription = Subscription("news", tenant=None, size=3)
    for n in range(5):
        subscription.offer(Event("news", "n", "t", {"n": n}))
    assert subscription.dropped == 2
    assert [subscription.queue.get_nowait().data["n"] for _ in range(3)] == [2, 3, 4]
