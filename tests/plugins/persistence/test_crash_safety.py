"""Crash safety with a real server process: SIGKILL while a client streams writes (at several
moments: mid-stream, during a checkpoint, during a backup), restart, and every acknowledged write
is there; a backup taken under write load restores to a consistent store that survives a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mnemogate.core.testing import free_port

pytestmark = pytest.mark.slow

MNEMOGATE = str(Path(sys.executable).with_name("mnemogate"))
P = "/api/v1/persistence"


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MNEMOGATE_")}
        env.update(
            MNEMOGATE_DATA_DIR=str(self.data_dir),
            MNEMOGATE_LOAD_PLUGINS="",
            MNEMOGATE_PLUGINS__MEMORY__EMBEDDER="hashing",
            MNEMOGATE_PLUGINS__RATELIMIT__REQUESTS_PER_MINUTE="1000000",
        )
        self.process = subprocess.Popen(
            [MNEMOGATE, "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                raise AssertionError(f"server exited early:\n{stderr[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("server did not become ready")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = Server(tmp_path / "data")
    yield started
    started.stop()


async def stream_writes(client: httpx.AsyncClient, acked: list[str], label: str, writers: int = 4) -> None:
    """Write episodes until the server goes away; remember the id of every acknowledged one."""

    async def writer(number: int) -> None:
        sequence = 0
        while True:
            sequence += 1
            try:
                answer = await client.post(
                    "/api/v1/episodes", json={"content": f"{label} writer {number} episode {sequence}"}
                )
            except httpx.TransportError:
                return
            if answer.status_code != 201:
                raise AssertionError(answer.text)
            acked.append(answer.json()["id"])

    await asyncio.gather(*(writer(n) for n in range(writers)))


async def acknowledged(acked: list[str], count: int) -> None:
    """Wait until ``count`` writes are acknowledged (a loaded machine starts slowly)."""
    for _ in range(1200):
        if len(acked) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(acked)} writes acknowledged")


async def all_episode_ids(client: httpx.AsyncClient) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/episodes", params=params)).json()
        ids.update(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return ids


async def integrity(client: httpx.AsyncClient) -> dict[str, Any]:
    for _ in range(200):
        status = (await client.get(f"{P}/status")).json()
        if status["integrity"]["ok"] is not None:
            return status["integrity"]
        await asyncio.sleep(0.05)
    raise AssertionError("the integrity check did not finish")


async def test_sigkill_while_streaming_writes_loses_no_acknowledged_write(server: Server) -> None:
    acked: list[str] = []
    server.start()
    # Each round kills at another moment: mid-stream at two points, while a checkpoint folds the
    # log into the database, while a backup reads its snapshot; the restarted server is checked,
    # then takes the next round's writes.
    for round_number, (delay, during) in enumerate(
        [(0.4, None), (1.3, None), (0.6, "checkpoint"), (0.6, "backup")]
    ):
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            writes = asyncio.create_task(stream_writes(client, acked, f"round {round_number}"))
            await acknowledged(acked, len(acked) + 10)
            await asyncio.sleep(delay)
            if during is not None:
                operation = asyncio.create_task(client.post(f"{P}/{during}"))
                await asyncio.sleep(0.02)
            server.kill()
            await writes
            if during is not None:
                await asyncio.gather(operation, return_exceptions=True)
        server.start()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await integrity(client))["ok"] is True
            stored = await all_episode_ids(client)
            lost = set(acked) - stored
            assert not lost, f"round {round_number}: {len(lost)} of {len(acked)} acknowledged writes lost"


async def test_restore_of_a_backup_taken_under_write_load_is_consistent_and_durable(server: Server) -> None:
    server.start()
    acked: list[str] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        writes = asyncio.create_task(stream_writes(client, acked, "before"))
        await acknowledged(acked, 20)
        made = await client.post(f"{P}/backup")
        await acknowledged(acked, len(acked) + 20)
        assert made.status_code == 201, made.text
        backup = made.json()
        server.kill()
        await writes
    server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        assert len(await all_episode_ids(client)) > backup["tables"]["episodic_episodes"] > 0
        restored = await client.post(f"{P}/restore", json={"backup_id": backup["id"]})
        assert restored.status_code == 200, restored.text
        result = restored.json()
        assert result["integrity"] == "ok"
        for table in ("episodic_episodes", "memidx_items", "memidx_vectors", "memory_activation"):
            assert result["tables"][table] == backup["tables"][table], table
        in_backup = await all_episode_ids(client)
        assert len(in_backup) == backup["tables"]["episodic_episodes"]
        # The restore is a committed transaction: it survives a crash right after it.
        server.kill()
    server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        assert (await integrity(client))["ok"] is True
        assert await all_episode_ids(client) == in_backup
        hits = await client.post("/api/v1/episodes/recall", json={"query": "before writer 0 episode 1"})
        assert hits.status_code == 200 and hits.json()["items"]
        assert all(item["episode"]["id"] in in_backup for item in hits.json()["items"])
