"""`mnemogate serve` as a real process: graceful SIGTERM, start-up failures, exposure rules."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from mnemogate.core.plugins import BUILTIN_PLUGINS
from mnemogate.core.testing import free_port

MNEMOGATE = str(Path(sys.executable).with_name("mnemogate"))

PLUGIN_SOURCE = """
import asyncio
from fastapi import APIRouter
from mnemogate.core.hookspecs import hookimpl

router = APIRouter()


@router.get("/slow")
async def slow() -> dict:
    await asyncio.sleep(2)
    return {"finished": True}


@hookimpl
def register_routes(register):
    register(router, scope=None)


@hookimpl
def register_ws_channels(register):
    register("lifecycle")
"""


def install_plugin(site: Path) -> None:
    """An installed distribution as pip leaves it: the module plus its dist-info entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "lifecycle_plugin.py").write_text(PLUGIN_SOURCE)
    info = site / "lifecycle_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lifecycle-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mnemogate]\nlifecycle = lifecycle_plugin\n")
    (info / "RECORD").write_text("")


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    install_plugin(tmp_path / "site")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNEMOGATE_")}
    env.update(
        PYTHONPATH=str(tmp_path / "site"),
        MNEMOGATE_DATA_DIR=str(tmp_path / "data"),
        MNEMOGATE_GRACEFUL_TIMEOUT="10",
        MNEMOGATE_LOG_FORMAT="json",
        # Only this test's plugin, whatever else the environment has installed (mnemogate-redis).
        MNEMOGATE_LOAD_PLUGINS="lifecycle",
    )
    return env


def start(env: dict[str, str], *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [MNEMOGATE, "serve", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(process: subprocess.Popen[str], port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{process.stderr.read() if process.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("server did not become ready")


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_sigterm_finishes_in_flight_requests_and_closes_websockets(
    server_env: dict[str, str], tmp_path: Path, stopper: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    process = start(server_env, "--port", str(port), cwd=tmp_path)
    stopper.append(process)
    await asyncio.to_thread(wait_ready, process, port)
    base = f"http://127.0.0.1:{port}"
    async with connect(f"ws://127.0.0.1:{port}/ws/lifecycle") as ws, httpx.AsyncClient(base_url=base) as http:
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        in_flight = asyncio.create_task(http.get("/slow", timeout=10))
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012  # service restart
        response = await in_flight
        assert response.status_code == 200 and response.json() == {"finished": True}
    with pytest.raises(httpx.TransportError):
        await asyncio.to_thread(httpx.get, f"{base}/health", timeout=1)
    assert await asyncio.to_thread(process.wait, 15) == 0
    stderr = process.stderr.read() if process.stderr else ""
    assert "Traceback" not in stderr
    messages = [orjson.loads(line)["msg"] for line in stderr.splitlines() if line.startswith("{")]
    assert "Application shutdown complete." in messages


def test_refuses_a_public_address_without_keys_and_says_why(
    server_env: dict[str, str], tmp_path: Path, stopper: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    process = start(server_env, "--host", "0.0.0.0", "--port", str(port), cwd=tmp_path)
    stopper.append(process)
    code = process.wait(timeout=30)
    stderr = process.stderr.read() if process.stderr else ""
    assert code != 0
    assert "refusing to serve 0.0.0.0 without API keys" in stderr
    assert "Traceback" not in stderr and 'File "' not in stderr


def test_public_address_is_served_once_a_key_exists_or_when_allowed_open(
    server_env: dict[str, str], tmp_path: Path, stopper: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    process = start(server_env, "--host", "0.0.0.0", "--port", str(port), "--allow-open", cwd=tmp_path)
    stopper.append(process)
    wait_ready(process, port)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    assert "serving an open API on 0.0.0.0" in (process.stderr.read() if process.stderr else "")

    created = subprocess.run(
        [MNEMOGATE, "keys", "create", "--scope", "admin", "--name", "ops"],
        env=server_env, cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = orjson.loads(created.stdout)["key"]
    port = free_port()
    process = start(server_env, "--host", "0.0.0.0", "--port", str(port), cwd=tmp_path)
    stopper.append(process)
    wait_ready(process, port)
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/stats").status_code == 401
    stats = httpx.get(f"http://127.0.0.1:{port}/api/v1/stats", headers={"X-API-Key": key})
    assert stats.status_code == 200 and stats.json()["plugins_enabled"] == len(BUILTIN_PLUGINS) + 1
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


def test_a_plugin_failing_at_startup_stops_serve_with_its_name(
    server_env: dict[str, str], tmp_path: Path, stopper: list[subprocess.Popen[str]]
) -> None:
    site = Path(server_env["PYTHONPATH"])
    (site / "lifecycle_plugin.py").write_text(
        PLUGIN_SOURCE
        + "\n\n@hookimpl\nasync def startup(app):\n    raise ConnectionError('vector store unreachable')\n"
    )
    process = start(server_env, "--port", str(free_port()), cwd=tmp_path)
    stopper.append(process)
    assert process.wait(timeout=30) != 0
    stderr = process.stderr.read() if process.stderr else ""
    assert "starting plugin 'lifecycle'" in stderr and "vector store unreachable" in stderr
    assert "Traceback" not in stderr


def test_several_workers_share_one_migrated_database(
    server_env: dict[str, str], tmp_path: Path, stopper: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    process = start(server_env, "--port", str(port), "--workers", "2", cwd=tmp_path)
    stopper.append(process)
    wait_ready(process, port, seconds=40)
    for _ in range(10):
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health/ready").status_code == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    stderr = process.stderr.read() if process.stderr else ""
    assert stderr.count(f"ready: {len(BUILTIN_PLUGINS) + 1} plugins") == 2 and "Traceback" not in stderr
