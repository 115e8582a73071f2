"""The mnemogate-redis distribution (contrib/mnemogate-redis), loaded through its entry point as
a deployment loads it, against the real Redis server: rate-limit buckets, events and gateway
session state shared between two app instances; without MNEMOGATE_REDIS_URL it stays out of
the way. Each test uses a key prefix of its own and deletes its keys afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from websockets.asyncio.client import connect

from mnemogate.core.events import InProcessEventBus
from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, isolated_settings, running, served

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A Redis key prefix of the test's own; its keys are deleted afterwards."""
    import redis.asyncio as aioredis

    value = f"mnemogate-test-{uuid.uuid4().hex[:12]}:"
    yield value
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{value}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def instance(
    tmp_path: Path, name: str, prefix: str, redis: bool = True, disabled: tuple[str, ...] = (), **tables: Any
) -> FastAPI:
    """One app with the redis plugin loaded from its entry point, as ``pip install`` makes it."""
    settings = isolated_settings(
        tmp_path / name,
        load_plugins=["redis"],
        redis_url=SecretStr(REDIS_URL) if redis else None,
        plugins=PluginsConfig.model_validate(
            {
                "redis": {"prefix": prefix},
                "memory": {"embedder": "hashing"},
                "disabled": list(disabled),
                **tables,
            }
        ),
    )
    return build_app(settings)


@contextlib.asynccontextmanager
async def two_clients(
    first: FastAPI, second: FastAPI
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with running(first) as one, running(second) as two:
        yield one, two


async def test_the_rate_limit_holds_across_instances(tmp_path: Path, prefix: str) -> None:
    limits = {"ratelimit": {"requests_per_minute": 5}}
    first, second = instance(tmp_path, "a", prefix, **limits), instance(tmp_path, "b", prefix, **limits)
    async with two_clients(first, second) as (one, two):
        assert (await one.get("/api/rate-limit")).json()["store"] == "redis"
        # The bucket route counted one request on a: four more fit, on either instance.
        answers = [await client.get("/api/v1/stats") for client in (one, two, one, two, one, two)]
        assert [a.status_code for a in answers] == [200, 200, 200, 200, 429, 429]
        assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["3", "2", "1", "0", "0", "0"]
        assert int(answers[-1].headers["retry-after"]) >= 1


async def test_buckets_are_updated_atomically(tmp_path: Path, prefix: str) -> None:
    app = instance(tmp_path, "a", prefix)
    async with running(app):
        store = app.state.registry.services["ratelimit"].store
        decisions = await asyncio.gather(*(store.take("key:burst", 20, 20 / 60) for _ in range(60)))
        assert sum(d.allowed for d in decisions) == 20
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(20))
        assert (await store.peek("key:burst", 20, 20 / 60)).allowed is False


async def next_event(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        event = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        if event["type"] == kind:
            return event


async def test_websocket_clients_see_events_of_every_instance(tmp_path: Path, prefix: str) -> None:
    first, second = instance(tmp_path, "a", prefix), instance(tmp_path, "b", prefix)
    async with (
        served(first) as base_a,
        served(second) as base_b,
        connect(base_b.replace("http://", "ws://") + "/ws/memory") as on_b,
        connect(base_a.replace("http://", "ws://") + "/ws/memory") as on_a,
        httpx.AsyncClient(base_url=base_a) as http,
    ):
        created = await http.post("/api/v1/episodes", json={"content": "written on instance a"})
        assert created.status_code == 201
        seen_on_b = await next_event(on_b, "created")
        assert seen_on_b["data"]["ids"] == [created.json()["id"]]
        seen_on_a = await next_event(on_a, "created")
        assert seen_on_a["data"]["ids"] == [created.json()["id"]]
        # Each instance delivers an event once: its own directly, the other's from Redis.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(on_a.recv(), 0.5)


async def test_the_active_session_and_auto_mode_are_shared(tmp_path: Path, prefix: str) -> None:
    first, second = instance(tmp_path, "a", prefix), instance(tmp_path, "b", prefix)
    async with two_clients(first, second) as (one, two):
        made = (await one.post("/api/sessions", json={"name": "shared", "activate": True})).json()
        toggled = (await one.post("/api/sessions/toggle-auto", json={"enabled": False})).json()
        assert toggled["enabled"] is False

        async def status() -> dict[str, Any]:
            return (await two.get("/api/sessions/auto-status")).json()

        for _ in range(100):
            if (await status())["active_session_id"] == made["id"] and not (await status())["enabled"]:
                break
            await asyncio.sleep(0.02)
        assert (await status())["active_session_id"] == made["id"]
        assert (await status())["enabled"] is False
        # A gateway request on the other instance continues the shared session (this test's
        # instances have a database each: the session reaches b's only through the request).
        body = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello"}]}
        assert (await two.post("/v1/chat/completions", json=body)).status_code == 200
        continued = (await two.get(f"/api/sessions/{made['id']}")).json()
        assert continued["requests"] == 1 and continued["active"] is True

    # A new instance starts with the shared state.
    third = instance(tmp_path, "c", prefix)
    async with running(third) as three:
        assert (await three.get("/api/sessions/auto-status")).json()["active_session_id"] == made["id"]


async def test_without_a_redis_url_everything_stays_in_the_process(tmp_path: Path, prefix: str) -> None:
    app = instance(tmp_path, "a", prefix, redis=False)
    async with running(app) as client:
        plugins = {p["name"] for p in (await client.get("/api/v1/plugins")).json()["items"]}
        assert "redis" in plugins
        assert (await client.get("/api/rate-limit")).json()["store"] == "memory"
        assert isinstance(app.state.registry.events.bus, InProcessEventBus)
        assert app.state.registry.services["sessions"].shared is None


async def test_it_works_with_the_rate_limit_and_sessions_plugins_switched_off(
    tmp_path: Path, prefix: str
) -> None:
    app = instance(tmp_path, "a", prefix, disabled=("ratelimit", "sessions"))
    async with running(app) as client:
        assert (await client.get("/api/v1/stats")).status_code == 200
        assert "x-ratelimit-limit" not in (await client.get("/api/v1/stats")).headers
        assert type(app.state.registry.events.bus).__name__ == "RedisEventBus"
