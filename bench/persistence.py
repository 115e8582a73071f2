"""Backup, restore, export and import of a store of N episodes; write latency while a backup runs
beside write latency without one; the backup beside a plain copy with SQLite's backup API.

    .venv/bin/python bench/persistence.py [--episodes 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import httpx

from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, isolated_settings, running

P = "/api/v1/persistence"


def app_in(directory: Path) -> object:
    settings = isolated_settings(directory, log_format="json")
    tables = {
        "memory": {"embedder": "hashing"},
        "hardening": {"max_body_bytes": 1 << 30},
        "ratelimit": {"requests_per_minute": 10**9},
    }
    return build_app(settings.model_copy(update={"plugins": PluginsConfig.model_validate(tables)}))


async def fill(client: httpx.AsyncClient, count: int) -> None:
    for start in range(0, count, 500):
        batch = [
            {
                "content": f"episode {i}: the team shipped release {i % 97} after review",
                "session_id": f"s{i % 50}",
            }
            for i in range(start, min(start + 500, count))
        ]
        answer = await client.post("/api/v1/episodes", json={"episodes": batch})
        answer.raise_for_status()


async def write_latencies(client: httpx.AsyncClient, stop: asyncio.Event, limit: int) -> list[float]:
    latencies: list[float] = []
    while not stop.is_set() and len(latencies) < limit:
        started = time.perf_counter()
        (await client.post("/api/v1/episodes", json={"content": "one more write"})).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(count: int) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "a", Path(tmp) / "b"
        async with running(app_in(source)) as client:  # type: ignore[arg-type]
            await fill(client, count)
            await client.post(f"{P}/checkpoint")
            database = source / "mnemogate.db"
            size_mb = database.stat().st_size / 1e6

            stop = asyncio.Event()
            idle = await write_latencies(client, stop, 200)

            started = time.perf_counter()
            writes = asyncio.create_task(write_latencies(client, stop, 10**9))
            made = await client.post(f"{P}/backup")
            backup_seconds = time.perf_counter() - started
            stop.set()
            during = await writes
            made.raise_for_status()

            def plain_copy() -> float:
                clock = time.perf_counter()
                src, dst = sqlite3.connect(database), sqlite3.connect(Path(tmp) / "plain.db")
                src.backup(dst)
                src.close()
                dst.close()
                return time.perf_counter() - clock

            plain = await asyncio.to_thread(plain_copy)
            rows.append(
                (
                    f"backup of {size_mb:.0f} MB (s)",
                    f"{backup_seconds:.2f}",
                    f"{plain:.2f} (sqlite3 backup API, no check)",
                )
            )
            rows.append(
                (
                    "write p50 / p95 during the backup (ms)",
                    f"{percentile(during, 0.5):.1f} / {percentile(during, 0.95):.1f} ({len(during)} writes)",
                    f"{percentile(idle, 0.5):.1f} / {percentile(idle, 0.95):.1f} without a backup",
                )
            )

            started = time.perf_counter()
            restored = await client.post(f"{P}/restore", json={"backup_id": made.json()["id"]})
            restored.raise_for_status()
            rows.append(("restore while serving (s)", f"{time.perf_counter() - started:.2f}", ""))

            started = time.perf_counter()
            exported = await client.get(f"{P}/export")
            export_seconds = time.perf_counter() - started
        lines = exported.content.count(b"\n") - 1
        rows.append(("export (records/s)", f"{lines / export_seconds:,.0f}", f"{lines} records"))
        async with running(app_in(target)) as client:  # type: ignore[arg-type]
            started = time.perf_counter()
            imported = await client.post(f"{P}/import", content=exported.content)
            import_seconds = time.perf_counter() - started
            imported.raise_for_status()
            started = time.perf_counter()
            await fill(client, min(count, 5000))
            add_rate = min(count, 5000) / (time.perf_counter() - started)
        rows.append(
            (
                "import (records/s)",
                f"{lines / import_seconds:,.0f}",
                f"{add_rate:,.0f}/s via POST /episodes batches",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=20_000)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.episodes))
    load = os.getloadavg()[0]
    print(
        f"persistence, {args.episodes} episodes (hashing embedder), load {load:.1f}, {os.cpu_count()} cores"
    )
    print(f"| {'measure':<40} | {'mnemogate':<34} | {'baseline':<44} |")
    print(f"|{'-' * 42}|{'-' * 36}|{'-' * 46}|")
    for name, value, baseline in rows:
        print(f"| {name:<40} | {value:<34} | {baseline:<44} |")


if __name__ == "__main__":
    main()
