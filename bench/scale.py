"""Scale-out: vector recall at 100k and 1M items on PostgreSQL + pgvector (HNSW) against the
embedded backend (SQLite + in-memory exact/IVF index), with recall@10 against exact search;
write throughput of one against two `mnemogate serve` instances sharing PostgreSQL and Redis;
rate-limit decisions per second through Redis against the in-process store.

Vectors are the clustered 384-d vectors of ``memory_scale.py`` (item i's vector is a function
of i). Each backend gets the same items through its ``MemoryIndex``: the embedded one by
``upsert`` in batches of 5,000; PostgreSQL by COPY with the HNSW index built afterwards
(``CREATE INDEX`` as the backend creates it: m=16, ef_construction=64), which is how a large
store is loaded. Searches go through each backend's ``vector_search`` (k=10). Exact neighbours
are computed with numpy over all items.

    .venv/bin/python bench/scale.py [--sizes 100000,1000000] [--queries 200] [--writes 10000]

Needs PostgreSQL with pgvector (``MNEMOGATE_BENCH_POSTGRES_URL``, default
postgresql://postgres@127.0.0.1:5432/test; a database is created and dropped), Redis on
127.0.0.1:6379 and ``contrib/mnemogate-redis`` installed (``pip install -e contrib/mnemogate-redis``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from memory_scale import DIM, ClusteredVectors, percentiles
from pydantic import SecretStr

from mnemogate.core.contracts import IndexItem
from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, free_port, isolated_settings, running

ADMIN_URL = os.environ.get("MNEMOGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MNEMOGATE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
MNEMOGATE = Path(sys.executable).with_name("mnemogate")
TENANT, KIND = "bench", "episodic"
CHUNK = 5000
K = 10


# -- databases -----------------------------------------------------------------------------------


async def admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A new database (the raw asyncpg URL), dropped at the end."""
    name = f"mnemogate_bench_{uuid.uuid4().hex[:10]}"
    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


def app_on(data_dir: Path, database_url: str | None = None) -> Any:
    settings = isolated_settings(
        data_dir,
        log_level="WARNING",
        database_url=SecretStr(database_url) if database_url else None,
        plugins=PluginsConfig(memory={"embedder": "hashing"}, embedders={"hashing_dimensions": DIM}),
    )
    return build_app(settings)


# -- vector search -------------------------------------------------------------------------------


def exact_neighbours(vectors: ClusteredVectors, size: int, queries: np.ndarray) -> np.ndarray:
    """The true top-k item numbers of each query (numpy over every item, in chunks)."""
    best_scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), K), dtype=np.int64)
    for start in range(0, size, 50_000):
        numbers = np.arange(start, min(start + 50_000, size))
        scores = queries @ vectors.items(numbers).T
        scores = np.concatenate([best_scores, scores], axis=1)
        ids = np.concatenate([best_ids, np.broadcast_to(numbers, (len(queries), len(numbers)))], axis=1)
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_ids = np.take_along_axis(ids, top, axis=1)
    return best_ids


async def search_all(index: Any, queries: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    await index.vector_search(TENANT, KIND, queries[0], k=K)  # warm: loads partitions, caches plans
    latencies, overlap = [], []
    for query, expected in zip(queries, truth, strict=True):
        begun = time.perf_counter()
        hits = await index.vector_search(TENANT, KIND, query, k=K)
        latencies.append(time.perf_counter() - begun)
        overlap.append(len({int(h.id[4:]) for h in hits} & set(expected.tolist())) / K)
    p50, p95 = percentiles(latencies)
    return {"p50_ms": p50, "p95_ms": p95, "recall_at_10": float(np.mean(overlap))}


async def embedded(
    vectors: ClusteredVectors, size: int, queries: np.ndarray, truth: np.ndarray
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        app = app_on(Path(tmp))
        async with running(app):
            registry = app.state.registry
            index = registry.services["memory"].index
            begun = time.perf_counter()
            for start in range(0, size, CHUNK):
                numbers = np.arange(start, min(start + CHUNK, size))
                batch = [
                    IndexItem(id=f"item{n}", vector=v, text=t)
                    for n, v, t in zip(numbers, vectors.items(numbers), vectors.texts(numbers), strict=True)
                ]
                async with registry.db.write() as session:
                    await index.upsert(session, TENANT, KIND, batch)
            await index.vector_search(TENANT, KIND, queries[0], k=K)  # builds the in-memory index
            loaded = time.perf_counter() - begun
            return {"load_s": loaded, **await search_all(index, queries, truth)}


def encode_vector(vector: np.ndarray) -> bytes:
    """pgvector's binary form: dimensions, a reserved zero, big-endian float32s."""
    return struct.pack(">HH", len(vector), 0) + np.asarray(vector, dtype=">f4").tobytes()


async def pgvector(
    vectors: ClusteredVectors, size: int, queries: np.ndarray, truth: np.ndarray
) -> dict[str, float]:
    import asyncpg

    async with postgres_database() as url:
        with tempfile.TemporaryDirectory() as tmp:
            async with running(app_on(Path(tmp), sqlalchemy_url(url))):
                pass  # migrations: the tables and the extension
            connection = await asyncpg.connect(url)
            try:
                await connection.set_type_codec(
                    "vector", schema="public", encoder=encode_vector, decoder=bytes, format="binary"
                )
                begun = time.perf_counter()
                columns = ["tenant", "kind", "id", "text", "dim", "embedding"]
                for start in range(0, size, CHUNK):
                    numbers = np.arange(start, min(start + CHUNK, size))
                    records = [
                        (TENANT, KIND, f"item{n}", t, DIM, v)
                        for n, v, t in zip(
                            numbers, vectors.items(numbers), vectors.texts(numbers), strict=True
                        )
                    ]
                    await connection.copy_records_to_table("memvec_items", records=records, columns=columns)
                copied = time.perf_counter() - begun
                await connection.execute("SET maintenance_work_mem = '3GB'")
                await connection.execute("SET max_parallel_maintenance_workers = 1")
                begun = time.perf_counter()
                await connection.execute(
                    f"CREATE INDEX ix_memvec_items_hnsw_{DIM} ON memvec_items "
                    f"USING hnsw ((embedding::vector({DIM})) vector_cosine_ops) "
                    f"WITH (m = 16, ef_construction = 64) WHERE dim = {DIM}"
                )
                built = time.perf_counter() - begun
                await connection.execute("ANALYZE memvec_items")
            finally:
                await connection.close()
            app = app_on(Path(tmp), sqlalchemy_url(url))
            async with running(app):
                index = app.state.registry.services["memory"].index
                found = await search_all(index, queries, truth)
    return {"copy_s": copied, "build_s": built, "load_s": copied + built, **found}


# -- write throughput ----------------------------------------------------------------------------


@contextlib.contextmanager
def instances(count: int, env: dict[str, str], logs: Path) -> Iterator[list[str]]:
    processes, bases = [], []
    try:
        for n in range(count):
            port = free_port()
            log = (logs / f"instance{n}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [str(MNEMOGATE), "serve", "--port", str(port)], env=env, stdout=log, stderr=log
                )
            )
            bases.append(f"http://127.0.0.1:{port}")
        for base, process in zip(bases, processes, strict=True):
            for _ in range(600):
                if process.poll() is not None:
                    raise RuntimeError(f"an instance exited; see {logs}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                time.sleep(0.1)
        yield bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:  # a loaded machine: do not let the bench hang
                process.kill()
                process.wait()


async def write_load(bases: list[str], total: int, batch: int = 50, concurrency: int = 8) -> float:
    """Episodes per second written by ``concurrency`` clients spread over the instances."""
    clients = [httpx.AsyncClient(base_url=base, timeout=120) for base in bases]
    requests = total // batch
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(n)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = {"episodes": [{"content": f"episode {n}-{i} about scale and load"} for i in range(batch)]}
            response = await client.post("/api/v1/episodes", json=body)
            assert response.status_code == 201, response.text

    try:
        begun = time.perf_counter()
        await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(concurrency)))
        return requests * batch / (time.perf_counter() - begun)
    finally:
        for client in clients:
            await client.aclose()


async def write_throughput(total: int) -> dict[int, float]:
    results = {}
    for count in (1, 2):
        async with postgres_database() as url:
            with tempfile.TemporaryDirectory() as tmp:
                env = {k: v for k, v in os.environ.items() if not k.startswith("MNEMOGATE_")}
                env.update(
                    MNEMOGATE_DATABASE_URL=sqlalchemy_url(url),
                    MNEMOGATE_REDIS_URL=REDIS_URL,
                    MNEMOGATE_LOAD_PLUGINS="redis",
                    MNEMOGATE_PLUGINS__REDIS__PREFIX=f"bench-{uuid.uuid4().hex[:8]}:",
                    MNEMOGATE_PLUGINS__MEMORY__EMBEDDER="hashing",
                    MNEMOGATE_PLUGINS__RATELIMIT__REQUESTS_PER_MINUTE="100000000",
                    MNEMOGATE_DATA_DIR=tmp,
                    MNEMOGATE_LOG_LEVEL="WARNING",
                )
                upgrade = [str(MNEMOGATE), "db", "upgrade"]
                await asyncio.to_thread(subprocess.run, upgrade, env=env, check=True, capture_output=True)
                with instances(count, env, Path(tmp)) as bases:
                    await write_load(bases, min(1000, total))  # warm: connections, embedder, plans
                    results[count] = await write_load(bases, total)
    return results


# -- rate-limit decisions ------------------------------------------------------------------------


async def decisions_per_second(store: Any, total: int, concurrency: int = 32) -> float:
    per_task = total // concurrency

    async def worker(n: int) -> None:
        for _ in range(per_task):
            await store.take(f"key:bench-{n}", 1_000_000, 1_000_000 / 60)

    begun = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return per_task * concurrency / (time.perf_counter() - begun)


async def rate_limit(total: int) -> dict[str, float]:
    from mnemogate_redis.service import bucket_store

    from mnemogate.core.settings import Settings
    from mnemogate.plugins.ratelimit.service import MemoryBucketStore

    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        redis_url=SecretStr(REDIS_URL), load_plugins=[], plugins=PluginsConfig(redis={"prefix": prefix})
    )
    redis_store = bucket_store(settings)
    try:
        await decisions_per_second(redis_store, 2000)  # warm: connections, script cache
        redis_rate = await decisions_per_second(redis_store, total)
        for key in [key async for key in redis_store.client.scan_iter(match=f"{prefix}*")]:
            await redis_store.client.delete(key)
    finally:
        await redis_store.close()
    return {"redis": redis_rate, "memory": await decisions_per_second(MemoryBucketStore(), total)}


# -- the table -----------------------------------------------------------------------------------


def table(
    searches: dict[int, dict[str, dict[str, float]]], writes: dict[int, float], decisions: dict[str, float]
) -> None:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        "scale: pgvector HNSW vs the embedded backend, one vs two instances, Redis; "
        f"load average at the end {load} on {os.cpu_count()} cores"
    )
    header = f"{'measure':<38} {'setting':<22} {'ours':>10} {'peer':>10}  peer"
    print(header)
    print("-" * len(header))

    def row(measure: str, setting: str, ours: float, peer: float | None, what: str, digits: int) -> None:
        peer_text = "" if peer is None else f"{peer:.{digits}f}"
        print(f"{measure:<38} {setting:<22} {ours:>10.{digits}f} {peer_text:>10}  {what}")

    for size, r in searches.items():
        label = f"{size:,} x {DIM}-d"
        pg, lite = r["pgvector"], r["embedded"]
        embedded = "embedded (SQLite + in-memory index)"
        row("vector search p50 (ms), k=10", label, pg["p50_ms"], lite["p50_ms"], embedded, 2)
        row("vector search p95 (ms), k=10", label, pg["p95_ms"], lite["p95_ms"], embedded, 2)
        row("recall@10 against exact search", label, pg["recall_at_10"], lite["recall_at_10"], embedded, 3)
        row("load (s): COPY + HNSW / upserts", label, pg["load_s"], lite["load_s"], embedded, 1)
        row("  of which the HNSW build (s)", label, pg["build_s"], None, "", 1)
    if writes:
        row(
            "writes (episodes/s), batches of 50",
            "2 instances, PG+Redis",
            writes[2],
            writes[1],
            "1 instance",
            0,
        )
    if decisions:
        what = "in-process store"
        row(
            "rate-limit decisions/s, 32 tasks",
            "Redis, Lua, 1 trip",
            decisions["redis"],
            decisions["memory"],
            what,
            0,
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="item counts for the vector search part")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--writes", type=int, default=10_000, help="episodes per write-throughput run (0: skip)"
    )
    parser.add_argument("--decisions", type=int, default=20_000, help="rate-limit decisions (0: skip)")
    args = parser.parse_args()
    vectors = ClusteredVectors()
    queries = vectors.queries(np.arange(args.queries)).astype(np.float32)
    searches: dict[int, dict[str, dict[str, float]]] = {}
    for size in [int(s) for s in args.sizes.split(",") if s]:
        truth = exact_neighbours(vectors, size, queries)
        searches[size] = {
            "pgvector": await pgvector(vectors, size, queries, truth),
            "embedded": await embedded(vectors, size, queries, truth),
        }
        print(f"{size}: {searches[size]}", file=sys.stderr)
    writes = await write_throughput(args.writes) if args.writes else {}
    decisions = await rate_limit(args.decisions) if args.decisions else {}
    table(searches, writes, decisions)


if __name__ == "__main__":
    asyncio.run(main())
