"""MCP gateway round trips: ``tools/call`` through the gateway vs calling the server without it.

Built-in server (json-query, ``query_json`` on a small inline document): the server called in
this process (``MCPServer.call_tool``) vs JSON-RPC ``POST /api/mcp-gateway/json-query/rpc`` to a
``mnemogate serve`` process (one worker, default plugins, call log on). Target: the gateway adds
at most 1 ms at p50 over the in-process call.

External stdio server (bench/mcp_stdio_server.py, ``echo``): the mcp SDK's client talking to its
own subprocess over stdio vs the same tool through the gateway (which keeps its own subprocess).

Requests are sequential (concurrency 1) on one keep-alive connection, after a warm-up; ``GET
/health`` on the same connection shows the HTTP floor of this client and server.

    .venv/bin/python bench/mcp_gateway.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import orjson
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from mnemogate.core.settings import Settings
from mnemogate.core.testing import build_app, free_port, running
from mnemogate.plugins.mcp_gateway.service import SERVICE
from mnemogate.plugins.providers.http import UpstreamPool

HERE = Path(__file__).resolve().parent
STDIO_SERVER = HERE / "mcp_stdio_server.py"
JSON_HEADERS = b"Content-Type: application/json\r\n"
QUERY = {
    "expression": "people[?age > `30`].name",
    "data": {"people": [{"name": "ada", "age": 36}, {"name": "bo", "age": 9}]},
}
ECHO = {"text": "hello"}
WARM_UP = 200


def rpc_body(tool: str, arguments: dict[str, object]) -> bytes:
    return orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    )


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000


async def timed(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    for _ in range(WARM_UP):
        await call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


@contextlib.contextmanager
def mnemogate_serve(workdir: Path) -> Iterator[str]:
    port = free_port()
    external = [{"name": "bench-stdio", "command": sys.executable, "args": [str(STDIO_SERVER)]}]
    env = {
        **os.environ,
        "MNEMOGATE_DATA_DIR": str(workdir / "serve"),
        "MNEMOGATE_LOAD_PLUGINS": "",
        "MNEMOGATE_LOG_LEVEL": "WARNING",
        "MNEMOGATE_PLUGINS__RATELIMIT__REQUESTS_PER_MINUTE": "1000000000",
        "MNEMOGATE_PLUGINS__MCP_GATEWAY__SERVERS": json.dumps(external),
    }
    log = (workdir / "serve.log").open("wb")
    command = [str(Path(sys.executable).with_name("mnemogate")), "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"mnemogate exited with {process.returncode}; see {log.name}")
            with contextlib.suppress(httpx.HTTPError):
                servers = httpx.get(f"{base}/api/mcp-gateway/servers", timeout=1).json()["items"]
                if all(s["status"] == "ready" for s in servers):
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("mnemogate did not come up")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


async def through_gateway(base: str, server: str, body: bytes, count: int) -> list[float]:
    pool = UpstreamPool(base)

    async def call() -> None:
        response = await pool.request(
            "POST", f"/api/mcp-gateway/{server}/rpc", JSON_HEADERS, body, read_timeout=30
        )
        answer = b"".join([chunk async for chunk in response.chunks()])
        if response.status != 200 or b'"result"' not in answer:
            raise RuntimeError(f"the gateway answered {response.status}: {answer[:200]!r}")

    try:
        return await timed(call, count)
    finally:
        pool.close()


async def http_floor(base: str, count: int) -> list[float]:
    pool = UpstreamPool(base)

    async def call() -> None:
        response = await pool.request("GET", "/health", b"", b"", read_timeout=30)
        async for _ in response.chunks():
            pass

    try:
        return await timed(call, count)
    finally:
        pool.close()


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        settings = Settings(data_dir=workdir / "in-process", load_plugins=[], log_level="WARNING")
        app = build_app(settings)
        async with running(app):
            gateway = app.state.registry.services[SERVICE]
            await gateway.wait_started()  # the gateway starts its servers after the app is ready
            server = gateway.servers["json-query"].server
            direct = await timed(lambda: server.call_tool("query_json", QUERY), count)
        parameters = StdioServerParameters(command=sys.executable, args=[str(STDIO_SERVER)])
        async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            stdio_direct = await timed(lambda: session.call_tool("echo", ECHO), count)
        with mnemogate_serve(workdir) as base:
            builtin = await through_gateway(base, "json-query", rpc_body("query_json", QUERY), count)
            stdio = await through_gateway(base, "bench-stdio", rpc_body("echo", ECHO), count)
            floor = await http_floor(base, count)
    rows = [
        ("json-query, in process (MCPServer.call_tool)", direct, None),
        ("json-query through the gateway (POST /rpc)", builtin, direct),
        ("stdio server, SDK client direct", stdio_direct, None),
        ("stdio server through the gateway (POST /rpc)", stdio, stdio_direct),
        ("GET /health (HTTP floor of this client)", floor, None),
    ]
    print(f"tools/call round trips, {count} sequential calls each after {WARM_UP} warm-up calls\n")
    print("| path | p50 ms | p99 ms | mean ms | added p50 ms | added p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, samples, baseline in rows:
        added = (
            f"{percentile(samples, 0.5) - percentile(baseline, 0.5):+.3f} | "
            f"{percentile(samples, 0.99) - percentile(baseline, 0.99):+.3f}"
            if baseline is not None
            else "— | —"
        )
        print(
            f"| {name} | {percentile(samples, 0.5):.3f} | {percentile(samples, 0.99):.3f} | "
            f"{statistics.fmean(samples) * 1000:.3f} | {added} |"
        )
    added = percentile(builtin, 0.5) - percentile(direct, 0.5)
    verdict = "met" if added <= 1.0 else "NOT met"
    print(f"\ntarget: the gateway adds <= 1 ms at p50 over the in-process call: {verdict} ({added:.3f} ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
