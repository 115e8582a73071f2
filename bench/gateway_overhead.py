"""What the gateway adds: direct to a mock upstream vs through mnemogate vs through LiteLLM.

One run, one machine, one fast mock upstream in its own process (bench/mock_upstream.py), one
closed-loop load generator with keep-alive connections (this process). mnemogate runs as
`mnemogate serve` with one worker, the default plugins on and request logging on; LiteLLM's
proxy runs with one worker from its own virtualenv, created on first use under
~/.cache/mnemogate-bench (LiteLLM is never a dependency of mnemogate).

Measured: added latency p50/p99 at concurrency 1, requests/s at concurrency 32 and 64 with
error counts, streaming time-to-first-byte overhead, and CPU milliseconds per request of each
gateway process (user + system time of its process tree during the throughput runs).

    .venv/bin/python bench/gateway_overhead.py [--requests 1000] [--seconds 5] [--no-litellm]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from mnemogate.core.testing import free_port
from mnemogate.plugins.providers.http import UpstreamPool

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("MNEMOGATE_BENCH_CACHE", Path.home() / ".cache" / "mnemogate-bench"))
LITELLM_VENV = CACHE / "litellm-venv"
# The release series the reference figures were taken with (the newest of it installs).
LITELLM_REQUIREMENT = "litellm[proxy]>=1.106,<1.107"
TICKS = os.sysconf("SC_CLK_TCK")
HEADERS = b"Content-Type: application/json\r\nAuthorization: Bearer %s\r\n"


@dataclass
class Target:
    name: str
    base: str
    model: str
    pid: int | None = None
    headers: bytes = HEADERS % b"sk-bench"
    latency: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    throughput: dict[int, tuple[float, int]] = field(default_factory=dict)
    cpu_ms: float | None = None


def body(model: str, stream: bool = False) -> bytes:
    return orjson.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 16,
            "stream": stream,
        }
    )


# -- processes -----------------------------------------------------------------------------------


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode} before answering")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
        todo.extend(children.get(current, ()))
    return total


def ensure_litellm() -> Path | None:
    executable = LITELLM_VENV / "bin" / "litellm"
    if executable.exists():
        return executable
    print(f"installing LiteLLM into {LITELLM_VENV} (once)...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = str(LITELLM_VENV / "bin" / "pip")
    installed = subprocess.run([pip, "install", "-q", LITELLM_REQUIREMENT], capture_output=True, text=True)
    if installed.returncode != 0:
        print(f"LiteLLM could not be installed:\n{installed.stderr[-2000:]}", file=sys.stderr)
        return None
    return executable


@contextlib.contextmanager
def processes(workdir: Path, with_litellm: bool) -> Iterator[list[Target]]:
    started: list[subprocess.Popen[bytes]] = []
    logs = workdir / "logs"
    logs.mkdir()

    def launch(name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out = (logs / f"{name}.log").open("wb")
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        started.append(process)
        return process

    try:
        up_port = free_port()
        upstream = launch("upstream", [sys.executable, str(HERE / "mock_upstream.py"), str(up_port)])
        up_base = f"http://127.0.0.1:{up_port}"
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"{up_base}/v1/chat/completions", content=body("bench-model"), timeout=1)
                break
            time.sleep(0.05)
        targets = [Target("direct", up_base, "bench-model", upstream.pid)]

        port = free_port()
        provider = [
            {
                "name": "bench",
                "base_url": f"{up_base}/v1",
                "api_key": "sk-upstream",
                "models": ["bench-model"],
            }
        ]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MNEMOGATE_")},
            "MNEMOGATE_DATA_DIR": str(workdir / "mnemogate"),
            "MNEMOGATE_LOAD_PLUGINS": "",
            "MNEMOGATE_PLUGINS__PROVIDERS__OPENAI_COMPATIBLE": json.dumps(provider),
            "MNEMOGATE_PLUGINS__RATELIMIT__REQUESTS_PER_MINUTE": "1000000000",
        }
        mnemogate = Path(sys.executable).with_name("mnemogate")
        created = subprocess.run(
            [str(mnemogate), "keys", "create", "--scope", "write"],
            env=env,
            cwd=workdir,
            capture_output=True,
            check=True,
        )
        key = orjson.loads(created.stdout)["key"].encode()
        gateway = launch("mnemogate", [str(mnemogate), "serve", "--port", str(port)], env)
        wait_until_up(f"http://127.0.0.1:{port}/health", gateway)
        targets.append(
            Target("mnemogate", f"http://127.0.0.1:{port}", "bench/bench-model", gateway.pid, HEADERS % key)
        )

        litellm = ensure_litellm() if with_litellm else None
        if litellm is not None:
            port = free_port()
            config = workdir / "litellm.yaml"
            model = {"model": "openai/bench-model", "api_base": f"{up_base}/v1", "api_key": "sk-upstream"}
            config.write_text(
                json.dumps({"model_list": [{"model_name": "bench-model", "litellm_params": model}]})
            )
            master = "sk-bench-" + "0" * 48
            env = {
                **os.environ,
                "LITELLM_LOG": "ERROR",
                "LITELLM_TELEMETRY": "False",
                "LITELLM_MASTER_KEY": master,
            }
            command = [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
            proxy = launch("litellm", [*command, "--num_workers", "1"], env)
            wait_until_up(f"http://127.0.0.1:{port}/health/liveliness", proxy, seconds=180)
            targets.append(
                Target(
                    "litellm", f"http://127.0.0.1:{port}", "bench-model", proxy.pid, HEADERS % master.encode()
                )
            )
        yield targets
    finally:
        for process in reversed(started):
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


# -- load ----------------------------------------------------------------------------------------


async def one(pool: UpstreamPool, headers: bytes, payload: bytes) -> tuple[float, float, bool]:
    """(seconds to the whole answer, seconds to the first body byte, ok)."""
    started = time.perf_counter()
    response = await pool.request("POST", "/v1/chat/completions", headers, payload, read_timeout=30)
    first = None
    async for _ in response.chunks():
        if first is None:
            first = time.perf_counter()
    done = time.perf_counter()
    return done - started, (first or done) - started, response.status == 200


async def sequential(target: Target, count: int, stream: bool) -> list[tuple[float, float, bool]]:
    pool = UpstreamPool(target.base)
    payload = body(target.model, stream)
    try:
        return [await one(pool, target.headers, payload) for _ in range(count)]
    finally:
        pool.close()


async def closed_loop(target: Target, concurrency: int, seconds: float) -> tuple[float, int, int]:
    """Each of ``concurrency`` clients sends its next request when the last one is answered,
    on its own keep-alive connection. Returns (requests/s, answered, errors)."""
    payload = body(target.model)
    deadline = time.perf_counter() + seconds
    answered = errors = 0

    async def client() -> None:
        nonlocal answered, errors
        pool = UpstreamPool(target.base)
        try:
            while time.perf_counter() < deadline:
                try:
                    _, _, ok = await one(pool, target.headers, payload)
                except Exception:
                    ok = False
                answered += ok
                errors += not ok
        finally:
            pool.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return answered / (time.perf_counter() - started), answered, errors


async def measure(targets: list[Target], requests: int, seconds: float) -> None:
    for target in targets:
        print(f"measuring {target.name}...", file=sys.stderr)
        await sequential(target, min(300, requests), stream=False)  # warm-up
        results = await sequential(target, requests, stream=False)
        target.latency = [r[0] * 1000 for r in results if r[2]]
        streamed = await sequential(target, max(100, requests // 2), stream=True)
        target.ttfb = [r[1] * 1000 for r in streamed if r[2]]
        cpu_before = cpu_seconds(target.pid) if target.pid else 0.0
        total = 0
        for concurrency in (32, 64):
            rate, answered, errors = await closed_loop(target, concurrency, seconds)
            target.throughput[concurrency] = (rate, errors)
            total += answered + errors
        if target.pid and total:
            target.cpu_ms = (cpu_seconds(target.pid) - cpu_before) * 1000 / total


# -- report --------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def report(targets: list[Target]) -> None:
    by = {t.name: t for t in targets}
    direct = by["direct"]
    names = [t.name for t in targets]

    def row(label: str, values: dict[str, str], target: str = "") -> list[str]:
        return [label, *(values.get(n, "n/a") for n in names), target]

    def added(target: Target, samples: str, q: float) -> str:
        if target is direct:
            return "-"
        return f"{pct(getattr(target, samples), q) - pct(getattr(direct, samples), q):.3f}"

    rows = [
        row("latency p50, c=1 (ms)", {t.name: f"{pct(t.latency, 50):.3f}" for t in targets}),
        row("latency p99, c=1 (ms)", {t.name: f"{pct(t.latency, 99):.3f}" for t in targets}),
        row("added p50, c=1 (ms)", {t.name: added(t, "latency", 50) for t in targets}, "<= 0.5"),
        row("added p99, c=1 (ms)", {t.name: added(t, "latency", 99) for t in targets}, "<= 2"),
        row("stream TTFB p50, c=1 (ms)", {t.name: f"{pct(t.ttfb, 50):.3f}" for t in targets}),
        row("added stream TTFB p50 (ms)", {t.name: added(t, "ttfb", 50) for t in targets}),
    ]
    for concurrency in (32, 64):
        rows.append(
            row(
                f"requests/s, c={concurrency} (errors)",
                {
                    t.name: f"{t.throughput[concurrency][0]:.0f} ({t.throughput[concurrency][1]})"
                    for t in targets
                },
                ">= 1500" if concurrency == 32 else "",
            )
        )
    rows.append(
        row(
            "CPU ms per request",
            {t.name: f"{t.cpu_ms:.3f}" if t.cpu_ms is not None else "n/a" for t in targets},
            "<= 0.7",
        )
    )
    if "litellm" in by:
        ratio = max(
            by["mnemogate"].throughput[c][0] / max(by["litellm"].throughput[c][0], 1e-9) for c in (32, 64)
        )
        rows.append(row("mnemogate / litellm requests/s (best c)", {"mnemogate": f"{ratio:.1f}x"}, ">= 20x"))
    header = ["metric", *names, "target"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print(
        f"\n{len(direct.latency)} sequential requests per target, {len(direct.ttfb)} streamed; "
        f"closed loop {args.seconds:.0f} s per concurrency; {os.cpu_count()} CPUs; "
        f"Python {sys.version.split()[0]}"
    )


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, processes(Path(tmp), not args.no_litellm) as targets:
        await measure(targets, args.requests, args.seconds)
    report(targets)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000, help="sequential requests per target")
    parser.add_argument("--seconds", type=float, default=5.0, help="closed-loop duration per concurrency")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
