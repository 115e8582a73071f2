"""The visualization's graph at 1k and 10k memories: the first request (read, PCA, bounded
force-directed layout), a cached one, the PCA projection and the learning series; beside the
layout, what one step of exact Fruchterman-Reingold repulsion (all n^2 pairs, the baseline the
sampled repulsion replaces) costs at the same size.

    .venv/bin/python bench/viz_graph.py [--sizes 1000 10000]

Memories are written through the API (episodes in batches, in sessions of 20; a fifth of them
entities related in chains), embedded with the hashing embedder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, isolated_settings, running


async def seed(client: Any, size: int) -> None:
    entities = size // 5
    episodes = size - entities
    for start in range(0, episodes, 1000):
        batch = [
            {"content": f"note {i} about topic {i % 37}", "session_id": f"s{i // 20}"}
            for i in range(start, min(start + 1000, episodes))
        ]
        assert (await client.post("/api/v1/episodes", json={"episodes": batch})).status_code == 201
    ids = []
    for i in range(entities):
        made = await client.post("/api/v1/entities", json={"name": f"entity {i}", "type": f"t{i % 7}"})
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    for i in range(1, len(ids)):
        source = ids[i - (1 if i % 10 else 10)]  # chains of ten, each hung on the one before
        body = {"source_id": source, "target_id": ids[i], "type": "rel", "weight": 0.5}
        assert (await client.post("/api/v1/entities/relations", json=body)).status_code == 201


async def timed(client: Any, path: str, **params: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    response = await client.get(path, params=params, timeout=600)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    return elapsed, response.json()


def exact_step_ms(n: int) -> float:
    """One step of exact repulsion over all pairs, in row blocks (float32)."""
    pos = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)
    started = time.perf_counter()
    push = np.zeros_like(pos)
    for start in range(0, n, 512):
        delta = pos[start : start + 512, None, :] - pos[None, :, :]
        distance2 = np.einsum("ijk,ijk->ij", delta, delta) + np.float32(1e-3)
        push[start : start + 512] = np.einsum("ijk,ij->ik", delta, 1 / distance2)
    return (time.perf_counter() - started) * 1000


async def measure(size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        settings = isolated_settings(Path(folder), log_level="WARNING")
        plugins = PluginsConfig.model_validate(
            {"memory": {"embedder": "hashing"}, "visualization": {"max_nodes": size}}
        )
        # The bench writes thousands of memories from one client: no rate limit.
        app = build_app(settings.model_copy(update={"plugins": plugins}), disabled=["ratelimit"])
        async with running(app) as client:
            await seed(client, size)
            cold, graph = await timed(client, "/api/v1/viz/graph", limit=size)
            cached, again = await timed(client, "/api/v1/viz/graph", limit=size)
            projection, _ = await timed(client, "/api/v1/viz/embeddings", limit=size)
            series, _ = await timed(client, "/api/v1/viz/series")
    assert len(graph["nodes"]) == size and again["cached"]
    return {
        "nodes": size,
        "edges": len(graph["edges"]),
        "cold": cold,
        "layout": graph["layout_ms"],
        "steps": graph["layout_steps"],
        "cached": cached,
        "projection": projection,
        "series": series,
        "exact": exact_step_ms(size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    rows = [asyncio.run(measure(size)) for size in args.sizes]
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    header = (
        "| nodes | edges | graph, first (ms) | of which layout (ms) | layout steps | graph, cached (ms) "
        "| PCA projection (ms) | series (ms) | one exact n² repulsion step (ms) |"
    )
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    for r in rows:
        print(
            f"| {r['nodes']:,} | {r['edges']:,} | {r['cold']:.0f} | {r['layout']:.0f} | {r['steps']} "
            f"| {r['cached']:.1f} | {r['projection']:.0f} | {r['series']:.0f} | {r['exact']:.0f} |"
        )


if __name__ == "__main__":
    main()
