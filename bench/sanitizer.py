"""How fast secret masking is, what it finds, and what it flags by mistake.

Run: ``python bench/sanitizer.py`` (with the project's virtualenv). Prints one table.

* Throughput (MB/s of text scanned) of the sanitizer's scanner (one Aho-Corasick pass over the
  triggers of every detector, then each detector's pattern only at its triggers) beside the
  naive way measured in the same run (every detector's regular expression over the whole
  text), on prose (README, DESIGN-like docs), code (this repository's Python) and secret-dense
  text (one generated secret every ~200 characters of code).
* Added latency per request: ``SanitizerService.mask`` on a whole chat body (placeholders,
  HMAC naming, sealing new secrets, the answer's restore filter), for a typical 3 KB chat turn
  and for a 100 KB request (target: 2 ms or less), best of several runs.
* Recall on generated secrets of every built-in kind (target 100%), and false positives per
  10k lines of ordinary code and prose (this repository's code and docs, tests and the
  sanitizer's own sources left out, as they hold deliberate secrets).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from mnemogate.core.contracts import ChatContext, Principal
from mnemogate.plugins.sanitizer.detectors import BUILTIN
from mnemogate.plugins.sanitizer.samples import MAKERS, in_context
from mnemogate.plugins.sanitizer.scanner import Scanner
from mnemogate.plugins.sanitizer.service import SanitizerService
from mnemogate.plugins.sanitizer.settings import SanitizerSettings
from mnemogate.plugins.sanitizer.vault import Vault

REPO = Path(__file__).resolve().parents[1]
RUNS = 5
RECALL_PER_KIND = 1000
LATENCY_TARGET_MS = 2.0


def corpus() -> tuple[str, str, list[Path]]:
    files = [
        path
        for path in [*REPO.glob("core/**/*.py"), *REPO.glob("plugins/**/*.py"), *REPO.glob("*.md")]
        if "sanitizer" not in path.parts
    ]
    code = "\n".join(p.read_text(encoding="utf-8") for p in files if p.suffix == ".py")
    prose = "\n".join(p.read_text(encoding="utf-8") for p in files if p.suffix == ".md")
    return prose, code, files


def secret_dense(code: str, size: int) -> str:
    rng = random.Random(7)
    kinds = list(MAKERS)
    pieces, used = [], 0
    while used < size:
        start = rng.randrange(0, len(code) - 200)
        kind = rng.choice(kinds)
        piece = code[start : start + 200] + " " + in_context(kind, MAKERS[kind](rng), rng) + "\n"
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces)


def best_seconds(run: Any, repeat: int = RUNS) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def naive(detectors: list[Any], text: str) -> int:
    return sum(1 for detector in detectors for _ in detector.find(text))


def chat_body(text_bytes: int, rng: random.Random, code: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a careful coding agent."}]
    used = 0
    turn = 0
    while used < text_bytes:
        start = rng.randrange(0, len(code) - 1500)
        chunk = code[start : start + min(1500, text_bytes - used)]
        role = ("user", "assistant", "tool")[turn % 3]
        message: dict[str, Any] = {"role": role, "content": chunk}
        if role == "tool":
            message["tool_call_id"] = f"c{turn}"
        messages.append(message)
        used += len(chunk)
        turn += 1
    kind = rng.choice(list(MAKERS))
    messages[-1]["content"] += "\n" + in_context(kind, MAKERS[kind](rng), rng)
    return {"model": "x", "messages": messages}


def mask_latency_ms(service: SanitizerService, body: dict[str, Any], runs: int = 30) -> float:
    raw = orjson.dumps(body)
    times = []
    for _ in range(runs):
        ctx = ChatContext(principal=Principal.open(), body=orjson.loads(raw))
        began = time.perf_counter()
        service.mask(ctx)
        times.append(time.perf_counter() - began)
        service._pending.clear()
    return statistics.median(times) * 1000


def main() -> None:
    prose, code, files = corpus()
    detectors = [d for d in BUILTIN if not d.pii]
    scanner = Scanner(detectors)
    dense = secret_dense(code, 1_000_000)
    rows = []
    for name, text in (("prose", prose), ("code", code), ("secret-dense", dense)):
        mb = len(text.encode()) / 1e6
        ours = best_seconds(lambda text=text: scanner.spans(text))
        theirs = best_seconds(lambda text=text: naive(detectors, text), repeat=2)
        rows.append(
            (
                name,
                f"{mb:.2f} MB",
                f"{mb / ours:.1f} MB/s",
                f"{mb / theirs:.1f} MB/s",
                f"{theirs / ours:.1f}x",
            )
        )

    # masking never touches the database on the request path, so the service needs none here
    service = SanitizerService(None, SanitizerSettings(), {d.kind: d for d in BUILTIN}, Vault(os.urandom(32)))  # type: ignore[arg-type]
    rng = random.Random(3)
    typical = mask_latency_ms(service, chat_body(3_000, rng, code))
    large = mask_latency_ms(service, chat_body(100_000, rng, code))

    missed: dict[str, int] = {}
    for kind, make in MAKERS.items():
        rng = random.Random(kind)
        for _ in range(RECALL_PER_KIND):
            secret = make(rng)
            text = f"note: {in_context(kind, secret, rng)} done"
            masked = text
            for span in reversed(scanner.spans(text)):
                masked = masked[: span.start] + "#" + masked[span.end :]
            if secret in masked:
                missed[kind] = missed.get(kind, 0) + 1
    total = RECALL_PER_KIND * len(MAKERS)
    recall = 100 * (total - sum(missed.values())) / total

    lines = flagged = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        lines += text.count("\n")
        flagged += len(scanner.spans(text))

    load = os.getloadavg()
    print(
        f"sanitizer benchmark (load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, {os.cpu_count()} CPUs)"
    )
    print()
    print(f"{'text':<14} {'size':>9} {'sanitizer':>12} {'naive regex':>12} {'speed-up':>9}")
    for row in rows:
        print(f"{row[0]:<14} {row[1]:>9} {row[2]:>12} {row[3]:>12} {row[4]:>9}")
    print()
    print(f"mask a 3 KB chat body:            {typical * 1000:8.1f} µs (median)")
    print(f"mask a 100 KB request:            {large:8.3f} ms (median; target ≤ {LATENCY_TARGET_MS} ms)")
    print(f"recall on generated secrets:      {recall:8.2f} % ({total} secrets, {len(MAKERS)} kinds)")
    if missed:
        print(f"  missed: {missed}")
    print(
        f"false positives (code + prose):   {flagged:8d} in {lines} lines"
        f" = {flagged * 10_000 / lines:.2f} per 10k"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
