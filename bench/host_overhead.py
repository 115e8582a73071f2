"""What the plugin host costs per request, and how long `mnemogate serve` takes to start.

Run: ``python bench/host_overhead.py`` (with the project's virtualenv). Prints one table.

Targets, each a real uvicorn server in its own process (one worker, uvicorn's default loop and
HTTP parser, the options ``mnemogate serve`` passes: no uvicorn log config, no uvicorn access
log, no server header):

* full stack: ``mnemogate serve`` with every built-in plugin and their whole middleware stack,
  access log as configured by default (one JSON line per request, written to a file here);
* bare FastAPI: the same route (GET /health answering ``{"status": "ok"}`` through the same
  response model) and nothing else.

The load generator runs in this process, apart from both servers: a closed loop over keep-alive
HTTP/1.1 connections on raw asyncio streams (each connection sends its next request once the
previous response is complete). With two or more CPUs, servers and load generator are pinned to
different CPUs while load runs. Measurements alternate between the targets in rounds so that
drift on a shared machine hits both alike. The rate-limit plugin exempts /health, so it never
answers 429 here.

"server CPU per request" is the server process's user + system CPU time (Linux /proc) over the
requests it served at the higher concurrency. Unlike latency at concurrency 1 it also counts
work done after the response has gone out (the access-log line, metrics), which is what bounds
throughput; it is reported for information, the target applies to the p50 difference.

Start-up is timed from process launch to the first 200 from /health, each time with a fresh
data directory so that migrations run, with no CPU pinning.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: mnemogate-bench\r\n\r\n"
HIGH_CONCURRENCY = 16
ROUNDS = 5
ROUND_SECONDS = 2.0
WARMUP_SECONDS = 1.0
STARTUP_RUNS = 5
OVERHEAD_TARGET_US = 150.0
STARTUP_TARGET_S = 2.0
READY_TIMEOUT_S = 30.0

BARE_SERVER = """
import sys

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Status(BaseModel):
    status: str


app = FastAPI()


@app.get("/health")
async def health() -> Status:
    return Status(status="ok")


uvicorn.run(
    app,
    host="127.0.0.1",
    port=int(sys.argv[1]),
    log_config=None,
    access_log=False,
    lifespan="on",
    timeout_graceful_shutdown=10,
    server_header=False,
)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def mnemogate_command() -> list[str]:
    script = Path(sys.executable).with_name("mnemogate")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from mnemogate.core.cli import main; main()"]


def server_environment(data_dir: Path) -> dict[str, str]:
    """No MNEMOGATE_* setting of the caller's shell; only the built-in plugins; own data dir."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MNEMOGATE_")}
    env["MNEMOGATE_DATA_DIR"] = str(data_dir)
    env["MNEMOGATE_LOAD_PLUGINS"] = ""
    return env


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class Placement:
    """Servers and load generator on different CPUs while measuring load, so that neither
    preempts the other and latencies do not depend on where the scheduler put them."""

    servers: frozenset[int] | None
    client: frozenset[int] | None

    @classmethod
    def detect(cls) -> Placement:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if len(cpus) < 2:
            return cls(None, None)
        return cls(frozenset(cpus[1:]), frozenset(cpus[:1]))

    def describe(self) -> str:
        if self.servers is None or self.client is None:
            return "no CPU pinning"
        servers = ",".join(str(cpu) for cpu in sorted(self.servers))
        return f"load runs: servers on CPU {servers}, load generator on CPU {min(self.client)}"


def launch(
    name: str,
    command: Sequence[str],
    workdir: Path,
    env: dict[str, str],
    port: int,
    cpus: frozenset[int] | None = None,
) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(command), cwd=workdir, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    if cpus is not None:
        os.sched_setaffinity(process.pid, cpus)
    return Server(name, process, port, log)


def launch_full(workdir: Path, name: str = "full", cpus: frozenset[int] | None = None) -> Server:
    port = free_port()
    data = workdir / f"{name}-data"
    command = [*mnemogate_command(), "serve", "--port", str(port)]
    return launch(name, command, workdir, server_environment(data), port, cpus)


def launch_bare(workdir: Path, cpus: frozenset[int] | None = None) -> Server:
    port = free_port()
    command = [sys.executable, "-c", BARE_SERVER, str(port)]
    return launch("bare", command, workdir, server_environment(workdir / "bare-data"), port, cpus)


def health_status(port: int) -> int | None:
    """Status of one GET /health on a new connection, or None if nothing answers yet."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
            head = sock.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def wait_ready(server: Server, started_ns: int | None = None) -> float:
    """Seconds from ``started_ns`` (default: now) until /health answers 200."""
    begin = started_ns if started_ns is not None else time.perf_counter_ns()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} server exited early:\n{server.log.read_text()[-2000:]}")
        if health_status(server.port) == 200:
            return (time.perf_counter_ns() - begin) / 1e9
        time.sleep(0.005)
    raise RuntimeError(f"{server.name} server did not answer /health within {READY_TIMEOUT_S:.0f} s")


# -- load generation -----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    latencies_ns: list[int] = field(default_factory=list)
    elapsed_ns: int = 0
    server_cpu_s: float | None = 0.0

    def add(self, other: Sample) -> None:
        self.latencies_ns.extend(other.latencies_ns)
        self.elapsed_ns += other.elapsed_ns
        if self.server_cpu_s is None or other.server_cpu_s is None:
            self.server_cpu_s = None
        else:
            self.server_cpu_s += other.server_cpu_s

    @property
    def server_cpu_us_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.latencies_ns:
            return None
        return self.server_cpu_s * 1e6 / len(self.latencies_ns)

    @property
    def rps(self) -> float:
        return len(self.latencies_ns) / (self.elapsed_ns / 1e9) if self.elapsed_ns else 0.0

    def percentile_us(self, q: float) -> float:
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] / 1000


async def _connection(port: int, deadline_ns: int, latencies: list[int]) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while time.perf_counter_ns() < deadline_ns:
            started = time.perf_counter_ns()
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter_ns() - started)
            if not head.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(f"unexpected response: {head.splitlines()[0]!r}")
    finally:
        writer.close()
        await writer.wait_closed()


async def _load(port: int, concurrency: int, seconds: float) -> Sample:
    latencies: list[int] = []
    started = time.perf_counter_ns()
    deadline = started + int(seconds * 1e9)
    await asyncio.gather(*(_connection(port, deadline, latencies) for _ in range(concurrency)))
    return Sample(latencies, time.perf_counter_ns() - started)


def load(server: Server, concurrency: int, seconds: float) -> Sample:
    cpu_before = cpu_seconds(server.process.pid)
    sample = asyncio.run(_load(server.port, concurrency, seconds))
    cpu_after = cpu_seconds(server.process.pid)
    sample.server_cpu_s = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return sample


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Result:
    c1: Sample = field(default_factory=Sample)
    high: Sample = field(default_factory=Sample)
    c1_round_p50s_us: list[float] = field(default_factory=list)


@contextmanager
def running(servers: list[Server]) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.stop()


def measure_throughput(workdir: Path, placement: Placement) -> dict[str, Result]:
    servers = [launch_full(workdir, cpus=placement.servers), launch_bare(workdir, cpus=placement.servers)]
    results = {server.name: Result() for server in servers}
    own_cpus = os.sched_getaffinity(0) if placement.client is not None else None
    with running(servers):
        if placement.client is not None:
            os.sched_setaffinity(0, placement.client)
        for server in servers:
            wait_ready(server)
            load(server, HIGH_CONCURRENCY, WARMUP_SECONDS)
            load(server, 1, WARMUP_SECONDS / 2)
        for _ in range(ROUNDS):
            for server in servers:
                sample = load(server, 1, ROUND_SECONDS)
                results[server.name].c1.add(sample)
                results[server.name].c1_round_p50s_us.append(sample.percentile_us(0.50))
            for server in servers:
                results[server.name].high.add(load(server, HIGH_CONCURRENCY, ROUND_SECONDS))
    if own_cpus is not None:
        os.sched_setaffinity(0, own_cpus)
    return results


def measure_startup(workdir: Path) -> list[float]:
    """Unpinned: a server starts as it would on this machine."""
    times = []
    for run in range(STARTUP_RUNS):
        started = time.perf_counter_ns()
        server = launch_full(workdir, name=f"startup-{run}")
        with running([server]):
            times.append(wait_ready(server, started))
    return times


def cpu_cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="mnemogate-bench-"))
    try:
        placement = Placement.detect()
        results = measure_throughput(workdir, placement)
        startup = measure_startup(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    full, bare = results["full"], results["bare"]
    overhead = full.c1.percentile_us(0.50) - bare.c1.percentile_us(0.50)
    per_round = [f - b for f, b in zip(full.c1_round_p50s_us, bare.c1_round_p50s_us, strict=True)]
    full_cpu, bare_cpu = full.high.server_cpu_us_per_request, bare.high.server_cpu_us_per_request
    cpu_overhead = None if full_cpu is None or bare_cpu is None else full_cpu - bare_cpu
    median_start, max_start = statistics.median(startup), max(startup)

    rows: list[tuple[str, str, str, str, str]] = [
        ("requests/s, concurrency 1", f"{full.c1.rps:,.0f}", f"{bare.c1.rps:,.0f}", "", ""),
        (
            f"requests/s, concurrency {HIGH_CONCURRENCY}",
            f"{full.high.rps:,.0f}",
            f"{bare.high.rps:,.0f}",
            "",
            "",
        ),
        (
            "p50 latency, concurrency 1 (µs)",
            f"{full.c1.percentile_us(0.50):,.0f}",
            f"{bare.c1.percentile_us(0.50):,.0f}",
            "",
            "",
        ),
        (
            "p99 latency, concurrency 1 (µs)",
            f"{full.c1.percentile_us(0.99):,.0f}",
            f"{bare.c1.percentile_us(0.99):,.0f}",
            "",
            "",
        ),
        (
            f"server CPU per request, concurrency {HIGH_CONCURRENCY} (µs)",
            cpu_cell(full.high.server_cpu_us_per_request),
            cpu_cell(bare.high.server_cpu_us_per_request),
            "",
            "",
        ),
        (
            "full stack overhead, server CPU per request (µs)",
            cpu_cell(cpu_overhead),
            "",
            "(info)",
            "",
        ),
        (
            "full stack overhead per request, p50 (µs)",
            f"{overhead:,.0f}",
            "",
            f"< {OVERHEAD_TARGET_US:.0f} µs",
            verdict(overhead < OVERHEAD_TARGET_US),
        ),
        (
            f"  same, lowest to highest of {ROUNDS} rounds (µs)",
            f"{min(per_round):,.0f} to {max(per_round):,.0f}",
            "",
            "",
            "",
        ),
        (
            f"start-up to first 200, median of {STARTUP_RUNS} (s)",
            f"{median_start:.2f}",
            "",
            f"≤ {STARTUP_TARGET_S:.0f} s",
            verdict(median_start <= STARTUP_TARGET_S),
        ),
        (
            f"start-up to first 200, max of {STARTUP_RUNS} (s)",
            f"{max_start:.2f}",
            "",
            f"≤ {STARTUP_TARGET_S:.0f} s",
            verdict(max_start <= STARTUP_TARGET_S),
        ),
    ]
    header = ("GET /health, uvicorn, 1 worker", "full stack", "bare FastAPI", "target", "result")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        aligned = (cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True))
        return "  ".join([first.ljust(widths[0]), *aligned])

    rule = "-" * len(line(header))
    print(rule)
    print(line(header))
    print(rule)
    for row in rows:
        print(line(row))
    print(rule)
    counts = f"{len(full.c1.latencies_ns):,} / {len(bare.c1.latencies_ns):,}"
    print(f"requests measured at concurrency 1 (full / bare): {counts}; {placement.describe()}")


if __name__ == "__main__":
    main()
