"""Memory injection and consolidation: what injection adds to a gateway request at 10k and 100k
stored memories (query embedding included), and how fast consolidation reads episodes.

Stored items get precomputed clustered vectors (the embedding of 100k texts is not what is
measured; ``bench/memory_scale.py`` explains the data); the query of each request is embedded
by the real default embedder (MiniLM int8 on ONNX Runtime), every query a different text so the
embedding cache never answers. Each size: N episodes, 1,000 entities and 200 skills in one
tenant, then 200 chat requests through the in-process gateway to the mock provider (no added
latency) with ``X-Mnemogate-Memory: inject`` and 200 without, alternating; the figure is the
gateway's own ``X-Mnemogate-Overhead-Ms`` (total minus provider time), so the column without
injection is the baseline measured in the same run, and the query embedding alone (MiniLM on
one new text) is timed beside it, since it is most of what injection adds. Consolidation: runs
of 2,000 episodes over the stored ones (topics, extraction, tool sequences; decay off),
episodes per second.

    .venv/bin/python bench/injection.py [--sizes 10000,100000]
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

from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, isolated_settings, running
from mnemogate.plugins.episodic.models import EpisodeCreate
from mnemogate.plugins.procedural.models import SkillCreate
from mnemogate.plugins.semantic.models import EntityCreate

DIM = 384
CLUSTERS = 1000
VOCABULARY = 5000
BATCH = 1000
REQUESTS = 200
CONSOLIDATION_BATCH = 2000


class Vectors:
    def __init__(self, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.centres = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
        self.noise = (0.8 * rng.standard_normal((8192, DIM))).astype(np.float32)
        self.words = [f"w{i}" for i in range(VOCABULARY)]
        ranks = np.arange(1, VOCABULARY + 1, dtype=np.float64)
        self.p = (1 / ranks) / (1 / ranks).sum()

    def items(self, numbers: np.ndarray) -> np.ndarray:
        vectors = self.centres[(numbers * 2654435761) % CLUSTERS] + self.noise[numbers % 8192]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def texts(self, numbers: np.ndarray) -> list[str]:
        rng = np.random.default_rng(int(numbers[0]) if len(numbers) else 0)
        picks = rng.choice(VOCABULARY, size=(len(numbers), 12), p=self.p)
        return [
            " ".join(self.words[w] for w in row) + f" item{n}" for row, n in zip(picks, numbers, strict=True)
        ]


class MixedEmbedder:
    """Stored items (texts ending in ``itemN``) get precomputed vectors; every other text (the
    queries) goes to the real MiniLM embedder."""

    name = "bench-mixed"
    dim = DIM

    def __init__(self, vectors: Vectors, real: Any) -> None:
        self.vectors = vectors
        self.real = real

    async def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        last = [t.rsplit(" ", 1)[-1] for t in texts]
        items = [i for i, word in enumerate(last) if word.startswith("item") and word[4:].isdigit()]
        if items:
            out[items] = self.vectors.items(np.array([int(last[i][4:]) for i in items]))
        others = [i for i in range(len(texts)) if i not in set(items)]
        if others:
            out[others] = await self.real.embed([texts[i] for i in others])
        return out


class BenchPlugin:
    plugin_name = "bench_mixed_vectors"

    def __init__(self, vectors: Vectors) -> None:
        self.vectors = vectors

    @hookimpl
    def register_embedders(self, register: Any) -> None:
        register(
            "bench-mixed",
            lambda registry: MixedEmbedder(self.vectors, registry.embedders["minilm"](registry)),
        )


def p(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


async def measure(size: int) -> dict[str, Any]:
    vectors = Vectors()
    result: dict[str, Any] = {"size": size}
    with tempfile.TemporaryDirectory() as tmp:
        plugins = PluginsConfig(
            memory={"embedder": "bench-mixed"},
            consolidation={"interval_seconds": 0},
            ratelimit={"requests_per_minute": 10_000_000},
            sessions={"log_requests": False},
        )
        app = build_app(
            isolated_settings(Path(tmp), log_level="WARNING", plugins=plugins), plugins=[BenchPlugin(vectors)]
        )
        async with running(app) as client:
            registry = app.state.registry
            episodes = registry.memory_types["episodic"]
            for start in range(0, size, BATCH):
                numbers = np.arange(start, min(start + BATCH, size))
                await episodes.add_many(
                    "default",
                    [
                        EpisodeCreate(content=t, session_id=f"s{n // 100}")
                        for t, n in zip(vectors.texts(numbers), numbers, strict=True)
                    ],
                )
            for n, text in enumerate(vectors.texts(np.arange(size, size + 1000))):
                await registry.memory_types["semantic"].add(
                    "default", EntityCreate(name=f"entity {n}", description=text)
                )
            for n, text in enumerate(vectors.texts(np.arange(size + 1000, size + 1200))):
                await registry.memory_types["procedural"].add(
                    "default", SkillCreate(name=f"skill {n}", description=text)
                )
            embedder = registry.services["memory"].embedder
            await embedder.embed(["warm the model up"])
            rng = np.random.default_rng(3)
            alone = []
            for n in range(REQUESTS):
                question = " ".join(rng.choice(vectors.words[100:], size=4)) + f" alone {n}?"
                begun = time.perf_counter()
                await embedder.embed([question])
                alone.append((time.perf_counter() - begun) * 1000)
            result["embed_p50"], result["embed_p95"] = p(alone, 50), p(alone, 95)
            overhead: dict[str, list[float]] = {"off": [], "inject": []}
            injected = []
            for n in range(2 * REQUESTS):
                mode = "inject" if n % 2 else "off"
                question = " ".join(rng.choice(vectors.words[100:], size=4)) + f" question {n}?"
                response = await client.post(
                    "/v1/chat/completions",
                    json={"model": "mock/echo", "messages": [{"role": "user", "content": question}]},
                    headers={"X-Mnemogate-Memory": mode},
                )
                assert response.status_code == 200, response.text
                overhead[mode].append(float(response.headers["x-mnemogate-overhead-ms"]))
            bridge = registry.services["memory_bridge"]
            await bridge.drain()
            injected = (await bridge.injections("default", None, limit=500, cursor=None)).items
            result["injected_requests"] = len(injected)
            for mode, samples in overhead.items():
                result[f"{mode}_p50"], result[f"{mode}_p95"] = p(samples, 50), p(samples, 95)
            consolidator = registry.services["consolidation"]
            read = 0
            started = time.perf_counter()
            while read < min(size, 5 * CONSOLIDATION_BATCH):
                run = await consolidator.run("default", max_episodes=CONSOLIDATION_BATCH, decay=False)
                read += run.episodes
                if not run.more:
                    break
            result["consolidation_per_s"] = read / (time.perf_counter() - started)
            result["consolidated"] = read
    return result


def table(results: list[dict[str, Any]]) -> None:
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    header = (
        f"{'memories':>9} {'overhead p50/p95 ms (no mode)':>30} {'with inject p50/p95 ms':>24} "
        f"{'added p95 ms':>13} {'target':>8} {'query embedding p50/p95 ms':>27} {'injected':>9} "
        f"{'consolidation ep/s':>19}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        added = r["inject_p95"] - r["off_p95"]
        print(
            f"{r['size'] + 1200:>9} {r['off_p50']:>14.2f} / {r['off_p95']:<13.2f} {r['inject_p50']:>10.2f} / "
            f"{r['inject_p95']:<11.2f} {added:>13.2f} {'<= 15':>8} "
            f"{r['embed_p50']:>13.2f} / {r['embed_p95']:<11.2f} "
            f"{r['injected_requests']:>5}/{REQUESTS:<3} "
            f"{r['consolidation_per_s']:>19.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    results = [asyncio.run(measure(int(size))) for size in args.sizes.split(",")]
    table(results)


if __name__ == "__main__":
    main()
