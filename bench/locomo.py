"""LOCOMO evidence recall: our hybrid recall against dense-only and BM25-only retrieval.

For each conversation every dialogue turn is stored as an episode through the episodic service
of a running app (speaker as actor, the session's date as occurred_at, the turn id
``D<session>:<turn>`` in metadata; one tenant per conversation). For each question of
categories 1-4 the top k are recalled and evidence recall@5 and @10 is measured: the share of
the question's evidence turn ids among them, averaged over questions. Side by side, in the
same run, over the same turn texts: dense-only retrieval with the same embedder (exact cosine),
BM25-only (``rank-bm25``), and plain reciprocal-rank fusion of the two.

    .venv/bin/python bench/locomo.py ../shared/locomo/locomo7.json

Needs the bench extra (``pip install -e '.[bench]'``). Recall does not reinforce here, so the
order of questions cannot change the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rank_bm25 import BM25Okapi

from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import build_app, isolated_settings, running
from mnemogate.plugins.episodic.models import EpisodeCreate, RecallRequest

KS = (5, 10)
WORD = re.compile(r"\w+")


def session_date(raw: str) -> datetime:
    """'1:56 pm on 8 May, 2023' -> an aware UTC datetime."""
    return datetime.strptime(raw.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def turns_of(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    turns = []
    number = 1
    while f"session_{number}" in conversation:
        occurred = session_date(conversation[f"session_{number}_date_time"])
        for turn in conversation[f"session_{number}"]:
            content = turn["text"]
            if turn.get("blip_caption"):
                content += f" [shares {turn['blip_caption']}]"
            turns.append(
                {
                    "id": turn["dia_id"],
                    "speaker": turn["speaker"],
                    "content": content,
                    "session": number,
                    "occurred_at": occurred,
                }
            )
        number += 1
    return turns


def evidence_recall(found: list[str], evidence: list[str], k: int) -> float:
    wanted = set(evidence)
    return len(wanted & set(found[:k])) / len(wanted)


def tokens(text: str) -> list[str]:
    return WORD.findall(text.lower())


def rrf(*rankings: list[str], k: int = 60) -> list[str]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1 / (k + rank)
    return sorted(scores, key=lambda item: -scores[item])


class Scores:
    def __init__(self) -> None:
        self.values: dict[int, list[float]] = {k: [] for k in KS}

    def add(self, found: list[str], evidence: list[str]) -> None:
        for k in KS:
            self.values[k].append(evidence_recall(found, evidence, k))

    def mean(self, k: int) -> float:
        return float(np.mean(self.values[k]))


async def run(data_file: Path, embedder: str, tables: dict[str, Any] | None = None) -> dict[str, float]:
    conversations = json.loads(await asyncio.to_thread(data_file.read_text))
    methods = ["hybrid (mnemogate)", "dense only", "BM25 only", "plain RRF(dense, BM25)"]
    scores = {name: Scores() for name in methods}
    questions = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        plugins = PluginsConfig(
            **{**(tables or {}), "memory": {"embedder": embedder, **(tables or {}).get("memory", {})}}
        )
        settings = isolated_settings(Path(tmp), plugins=plugins)
        app = build_app(settings)
        async with running(app):
            registry = app.state.registry
            episodes = registry.memory_types["episodic"]
            engine = registry.services["memory"]
            for conversation in conversations:
                tenant = conversation["sample_id"]
                turns = turns_of(conversation["conversation"])
                for number in sorted({t["session"] for t in turns}):
                    batch = [
                        EpisodeCreate(
                            content=t["content"],
                            actor=t["speaker"],
                            occurred_at=t["occurred_at"],
                            session_id=f"{tenant}-session-{number}",
                            metadata={"dia_id": t["id"]},
                        )
                        for t in turns
                        if t["session"] == number
                    ]
                    await episodes.add_many(tenant, batch)
                ids = [t["id"] for t in turns]
                # The baselines see each turn as "Speaker: text" too (without the speaker, dense
                # recall@10 halves).
                lines = [f"{t['speaker']}: {t['content']}" for t in turns]
                dense = await engine.embedder.embed(lines)
                bm25 = BM25Okapi([tokens(line) for line in lines])

                def top(values: np.ndarray, n: int = max(KS), ids: list[str] = ids) -> list[str]:
                    return [ids[i] for i in np.argsort(-values)[:n]]

                for qa in conversation["qa"]:
                    if qa["category"] not in (1, 2, 3, 4) or not qa.get("evidence"):
                        continue
                    questions += 1
                    question, evidence = qa["question"], [str(e) for e in qa["evidence"]]
                    recalled = await episodes.recall_request(
                        tenant, RecallRequest(query=question, k=max(KS)), reinforce=False
                    )
                    ours = [r.episode.metadata["dia_id"] for r in recalled]
                    query_vector = (await engine.embedder.embed([question]))[0]
                    dense_scores = dense @ query_vector
                    bm25_scores = np.asarray(bm25.get_scores(tokens(question)))
                    dense_top, bm25_top = top(dense_scores), top(bm25_scores)
                    fused = rrf(top(dense_scores, 50), top(bm25_scores, 50))
                    for name, found in zip(methods, (ours, dense_top, bm25_top, fused), strict=True):
                        scores[name].add(found, evidence)
    elapsed = time.perf_counter() - started
    print(
        f"LOCOMO evidence recall, {questions} questions (categories 1-4), "
        f"{len(conversations)} conversations, embedder {embedder}, {elapsed:.0f} s"
    )
    print(f"{'method':<26} {'recall@5':>9} {'recall@10':>10}")
    for name in methods:
        print(f"{name:<26} {scores[name].mean(5):>9.3f} {scores[name].mean(10):>10.3f}")
    return {name: scores[name].mean(10) for name in methods}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_file", type=Path, help="LOCOMO JSON (a list of conversations)")
    parser.add_argument("--embedder", default="minilm", help="registered embedder (default: minilm)")
    args = parser.parse_args()
    asyncio.run(run(args.data_file, args.embedder))


if __name__ == "__main__":
    main()
