"""Mem0 API latency through mnemogate at 10k memories, beside mnemogate's native API in the
same run: add one memory (``infer=false``) and search, p50/p95 over real HTTP to a uvicorn
server, with the default embedder (all-MiniLM-L6-v2 int8 on ONNX Runtime), so every add and
every search includes its embedding. Mem0's published figures (p50 148 ms, p95 200 ms for
search) are printed beside them.

1. seed: 10,000 memories through ``POST /memories`` (100 messages per request, ``infer=false``,
   50 users) and the same sentences as episodes through ``POST /api/v1/episodes`` (batches);
2. add: 200 single-message ``POST /memories`` and 200 single ``POST /api/v1/episodes`` (other
   sentences: the embedding cache must not favour either);
3. search: 200 queries through ``POST /search`` (Mem0 OSS), ``POST /v3/memories/search/``
   (Mem0 platform, what ``mem0ai``'s ``MemoryClient`` calls) and ``POST /api/v1/episodes/recall``,
   each confined to one user, top 10, each with its own query text (embedded per search).

    .venv/bin/python bench/mem0_compat.py [--memories 10000] [--embedder minilm]

Needs the bench extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, isolated_settings, served

USERS = 50
SAMPLES = 200
MEM0_PUBLISHED = {"search": (148.0, 200.0)}  # Mem0's paper (LOCOMO), search latency p50/p95 ms
TARGET_P95_MS = 20.0

SUBJECTS = ["I", "My sister", "Our team lead", "The new intern", "My landlord", "Our agent", "My doctor"]
ACTIONS = [
    "prefers dark roast coffee",
    "booked a flight to Lisbon",
    "is allergic to peanuts",
    "moved to a flat near the river",
    "started learning the cello",
    "restarted the database after the outage",
    "adopted a rescue dog named Miso",
    "runs a marathon every spring",
    "asked about the refund policy",
    "writes the quarterly report",
]
DETAILS = ["on Mondays", "since last year", "before the meeting", "with a friend", "in the evening"]
QUESTIONS = [
    "what coffee do I like",
    "where is the flight going",
    "any food allergies",
    "where does my sister live",
    "which instrument is being learned",
    "what happened to the database",
    "what is the dog called",
    "who runs marathons",
    "refund questions",
    "who writes the reports",
]


def sentence(n: int) -> str:
    subject = SUBJECTS[n % len(SUBJECTS)]
    action = ACTIONS[(n // len(SUBJECTS)) % len(ACTIONS)]
    detail = DETAILS[(n // (len(SUBJECTS) * len(ACTIONS))) % len(DETAILS)]
    return f"{subject} {action} {detail} (note {n})."


def percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.array(samples) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


async def timed(http: httpx.AsyncClient, path: str, body: dict[str, Any], expect: int = 200) -> float:
    begun = time.perf_counter()
    response = await http.post(path, json=body)
    elapsed = time.perf_counter() - begun
    assert response.status_code == expect, response.text
    return elapsed


async def measure(memories: int, embedder: str) -> dict[str, tuple[float, float]]:
    result: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = isolated_settings(
            Path(tmp), log_level="WARNING", plugins=PluginsConfig(memory={"embedder": embedder})
        )
        app = build_app(settings, disabled=["ratelimit"])  # 1,000s of requests a minute, one client
        async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=300) as http:
            for start in range(0, memories, 100):
                numbers = range(start, min(start + 100, memories))
                body = {
                    "messages": [{"role": "user", "content": sentence(n)} for n in numbers],
                    "user_id": f"u{(start // 100) % USERS}",
                    "infer": False,
                }
                await timed(http, "/memories", body)
            for start in range(0, memories, 1000):
                numbers = range(start, min(start + 1000, memories))
                episodes = [{"content": sentence(n), "user_id": f"u{(n // 100) % USERS}"} for n in numbers]
                await timed(http, "/api/v1/episodes", {"episodes": episodes}, expect=201)

            mem0_add, native_add = [], []
            for i in range(SAMPLES):
                # Distinct texts per API: the embedder's cache must not serve one API's text to the other.
                text, other = sentence(memories + 2 * i), sentence(memories + 2 * i + 1)
                user = f"u{i % USERS}"
                mem0_add.append(
                    await timed(
                        http,
                        "/memories",
                        {"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False},
                    )
                )
                native_add.append(
                    await timed(http, "/api/v1/episodes", {"content": other, "user_id": user}, 201)
                )
            result["add, Mem0 OSS (POST /memories)"] = percentiles(mem0_add)
            result["add, native (POST /api/v1/episodes)"] = percentiles(native_add)

            queries = [(QUESTIONS[i % len(QUESTIONS)], i, f"u{i % USERS}") for i in range(SAMPLES)]
            await timed(http, "/search", {"query": "warm up", "user_id": "u0"})
            await timed(http, "/api/v1/episodes/recall", {"query": "warm up", "user_id": "u0"})
            oss, platform, native = [], [], []
            for question, i, user in queries:
                # Each API gets its own query text, so each search pays for its query's embedding.
                query = f"{question} (o{i})"
                oss.append(await timed(http, "/search", {"query": query, "user_id": user, "top_k": 10}))
                query = f"{question} (p{i})"
                platform.append(
                    await timed(
                        http,
                        "/v3/memories/search/",
                        {"query": query, "filters": {"user_id": user}, "top_k": 10},
                    )
                )
                query = f"{question} (n{i})"
                native.append(
                    await timed(http, "/api/v1/episodes/recall", {"query": query, "user_id": user, "k": 10})
                )
            result["search, Mem0 OSS (POST /search)"] = percentiles(oss)
            result["search, Mem0 platform (POST /v3/memories/search/)"] = percentiles(platform)
            result["search, native (POST /api/v1/episodes/recall)"] = percentiles(native)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--embedder", default="minilm", help="minilm (default), hashing, ...")
    args = parser.parse_args()
    result = asyncio.run(measure(args.memories, args.embedder))
    load = os.getloadavg()
    print(
        f"Mem0 API through mnemogate, {args.memories:,} memories, embedder {args.embedder}, "
        f"{SAMPLES} requests each, real HTTP "
        f"(load average {load[0]:.1f} / {load[1]:.1f} on {os.cpu_count()} CPUs)"
    )
    print("| operation | p50 ms | p95 ms | Mem0 published p50 / p95 ms | target p95 |")
    print("|---|---|---|---|---|")
    for name, (p50, p95) in result.items():
        published = MEM0_PUBLISHED.get(name.split(",")[0])
        peer = f"{published[0]:.0f} / {published[1]:.0f}" if published else "—"
        target = f"< {TARGET_P95_MS:.0f} ms" if name.startswith("search") else "—"
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {peer} | {target} |")


if __name__ == "__main__":
    main()
