"""Sentences per second of the default embedder (all-MiniLM-L6-v2 int8 on ONNX Runtime), one
sentence per call and in batches, with the time to first vector (lazy model load) beside it.

    .venv/bin/python bench/embed.py [--sentences 512]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from mnemogate.plugins.embedders.minilm import MiniLMEmbedder

SUBJECTS = ["The engineer", "My sister", "The support team", "A customer", "The new intern", "Our agent"]
ACTIONS = [
    "fixed the failing deployment",
    "booked a flight to Lisbon",
    "asked about the refund policy",
    "wrote the quarterly report",
    "adopted a rescue dog",
    "restarted the database after the outage",
]
DETAILS = [
    "on Monday morning.",
    "before the meeting.",
    "without telling anyone.",
    "for the second time this week.",
]


def sentences(count: int) -> list[str]:
    out = []
    for i in range(count):
        subject, action = SUBJECTS[i % len(SUBJECTS)], ACTIONS[(i // 6) % len(ACTIONS)]
        out.append(f"{subject} {action} {DETAILS[(i // 36) % len(DETAILS)]} ({i})")
    return out


async def measure(count: int) -> list[tuple[str, float, str]]:
    texts = sentences(count)
    embedder = MiniLMEmbedder()
    started = time.perf_counter()
    await embedder.embed(texts[:1])
    first = time.perf_counter() - started
    rows = [("first vector, model load included (s)", first, "lazy: server start-up does not pay it")]
    started = time.perf_counter()
    for text in texts[:128]:
        await embedder.embed([text])
    rows.append(("one sentence per call (sentences/s)", 128 / (time.perf_counter() - started), ""))
    for batch in (8, 32, 128):
        started = time.perf_counter()
        for start in range(0, count, batch):
            await embedder.embed(texts[start : start + batch])
        rows.append((f"batches of {batch} (sentences/s)", count / (time.perf_counter() - started), ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=512)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.sentences))
    print(f"embed: all-MiniLM-L6-v2 int8 (ONNX Runtime, CPU), {args.sentences} sentences of ~12 words")
    print(f"{'measure':<40} {'ours':>10}  comparison")
    for name, value, note in rows:
        print(f"{name:<40} {value:>10.2f}  {note}")
    single = next(v for n, v, _ in rows if n.startswith("one sentence"))
    best = max(v for n, v, _ in rows if n.startswith("batches"))
    print(f"{'batching speed-up (best batch / single)':<40} {best / single:>10.2f}x")


if __name__ == "__main__":
    main()
