"""Two `mnemogate serve` processes sharing PostgreSQL (+ pgvector) and Redis, as a deployment
behind a load balancer runs them: a write on one is recalled on the other at once, a WebSocket
client on one sees writes made on the other, the rate limit holds across both (100 requests a
minute in total), and killing one with SIGKILL loses no acknowledged write."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from mnemogate.core.testing import ENV_PREFIX, free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MNEMOGATE = Path(sys.executable).with_name("mnemogate")
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
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


@pytest.fixture
def deployment_env(postgres_url: str, redis_prefix: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(
        MNEMOGATE_DATABASE_URL=postgres_url.replace("postgresql://", "postgresql+asyncpg://", 1),
        MNEMOGATE_REDIS_URL=REDIS_URL,
        MNEMOGATE_LOAD_PLUGINS="redis",
        MNEMOGATE_PLUGINS__REDIS__PREFIX=redis_prefix,
        MNEMOGATE_PLUGINS__MEMORY__EMBEDDER="hashing",
        MNEMOGATE_DATA_DIR=str(tmp_path / "data"),
        MNEMOGATE_LOG_FORMAT="text",
    )
    return env


def mnemogate(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run([str(MNEMOGATE), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout) if done.stdout.strip().startswith(("{", "[")) else done.stdout


@contextlib.contextmanager
def instance(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(MNEMOGATE), "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-2000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail(f"instance on port {port} did not start: {log.read_text()[-2000:]}")
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


async def next_event(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        event = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if event["type"] == kind:
            return event


def test_two_instances_serve_one_deployment(deployment_env: dict[str, str], tmp_path: Path) -> None:
    mnemogate(deployment_env, "db", "upgrade")
    # Two keys, so the rate-limit check below does not starve the other checks (one bucket per key).
    worker = mnemogate(deployment_env, "keys", "create", "--scope", "write", "--name", "worker")["key"]
    limited = mnemogate(deployment_env, "keys", "create", "--scope", "write", "--name", "limited")["key"]
    port_a, port_b = free_port(), free_port()
    with (
        instance(deployment_env, port_a, tmp_path / "a.log") as process_a,
        instance(deployment_env, port_b, tmp_path / "b.log"),
    ):
        asyncio.run(
            scenario(f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}", worker, limited, process_a)
        )


async def scenario(
    base_a: str, base_b: str, worker: str, limited: str, process_a: subprocess.Popen[bytes]
) -> None:
    auth = {"Authorization": f"Bearer {worker}"}
    async with (
        httpx.AsyncClient(base_url=base_a, headers=auth, timeout=30) as a,
        httpx.AsyncClient(base_url=base_b, headers=auth, timeout=30) as b,
        connect(base_b.replace("http://", "ws://") + f"/ws/memory?api_key={worker}") as ws_b,
    ):
        # A write on one instance is recalled on the other at once.
        written = await a.post("/api/v1/episodes", json={"content": "the lighthouse keeper rowed ashore"})
        assert written.status_code == 201
        recalled = await b.post("/api/v1/episodes/recall", json={"query": "lighthouse keeper", "k": 3})
        assert [i["episode"]["id"] for i in recalled.json()["items"]][:1] == [written.json()["id"]]

        # The WebSocket client on b sees the write made on a.
        event = await next_event(ws_b, "created")
        assert event["data"]["ids"] == [written.json()["id"]]

        # The rate limit holds across both instances: 100 a minute in total.
        limited_auth = {"Authorization": f"Bearer {limited}"}
        started = time.monotonic()
        statuses: dict[str, list[int]] = {"a": [], "b": []}
        for n in range(140):
            name, client = ("a", a) if n % 2 == 0 else ("b", b)
            statuses[name].append((await client.get("/api/v1/stats", headers=limited_auth)).status_code)
        refilled = math.ceil((time.monotonic() - started) * 100 / 60)
        allowed = sum(s == 200 for s in statuses["a"] + statuses["b"])
        assert 100 <= allowed <= 100 + refilled, (allowed, refilled)
        assert 429 in statuses["a"] and 429 in statuses["b"]

        # SIGKILL one instance while it acknowledges writes: every acknowledged one is on the other.
        acknowledged: list[str] = []
        under_way = asyncio.Event()

        async def write_until_killed() -> None:
            for n in range(10_000):
                try:
                    answer = await a.post(
                        "/api/v1/episodes", json={"content": f"write number {n} before the crash"}
                    )
                except httpx.HTTPError:
                    return
                assert answer.status_code == 201
                acknowledged.append(answer.json()["id"])
                if len(acknowledged) == 20:
                    under_way.set()

        writer = asyncio.create_task(write_until_killed())
        await asyncio.wait_for(under_way.wait(), 60)
        process_a.send_signal(signal.SIGKILL)
        await writer
        assert process_a.wait(timeout=10) == -signal.SIGKILL
        for episode_id in acknowledged:
            assert (await b.get(f"/api/v1/episodes/{episode_id}")).status_code == 200
        found = await b.post("/api/v1/episodes/recall", json={"query": "crash", "k": 5, "mode": "keyword"})
        assert len(found.json()["items"]) == 5
