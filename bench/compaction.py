"""What each compaction strategy saves and what it keeps.

Run: ``python bench/compaction.py`` (with the project's virtualenv). Prints one table.

Long synthetic agent conversations (tool calls reading files, long tool outputs, chat turns)
carry planted facts: a user states, at a random turn, something like "the staging database
listens on port 6412" with a value that occurs nowhere else. Each strategy compacts every
conversation to a budget of a quarter, then a tenth, of its tokens; a fact counts as still answerable when its
value is still in the compacted context (verbatim, in a kept message or in a summary). The
``none`` row is the uncompacted conversation (which does not fit the budget). Summaries are the
offline extractive summariser (no model is called).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from typing import Any

from mnemogate.core import tokens
from mnemogate.plugins.compaction import strategies

CONVERSATIONS = 20
TURNS = 60
FACTS = 8
BUDGET_SHARES = (0.25, 0.10)
SUBJECTS = (
    "the staging database listens on port",
    "the release branch is called",
    "our on-call engineer this week is",
    "the API rate limit for partners is",
    "the feature flag for the new checkout is",
    "the S3 bucket for backups is",
    "the customer's account number is",
    "the build agent's hostname is",
    "the maximum upload size we allow is",
    "the retry budget per job is",
)
WORDS = (
    "module",
    "config",
    "parse",
    "cache",
    "retry",
    "handler",
    "request",
    "schema",
    "client",
    "server",
    "queue",
)


def conversation(rng: random.Random) -> tuple[list[dict[str, Any]], list[str]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a coding agent working in a large repository."},
        {"role": "user", "content": "Help me refactor the payment service."},
    ]
    plant_at = sorted(rng.sample(range(TURNS), FACTS))
    values = []
    for turn in range(TURNS):
        if turn in plant_at:
            value = f"{rng.choice('QXZKJV')}{rng.randrange(1000, 9999)}-{rng.choice(WORDS)}"
            values.append(value)
            subject = rng.choice(SUBJECTS)
            messages.append({"role": "user", "content": f"By the way, {subject} {value}. Remember that."})
            messages.append({"role": "assistant", "content": "Noted."})
        call_id = f"call_{turn}"
        path = f"src/{rng.choice(WORDS)}/{rng.choice(WORDS)}_{turn}.py"
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": "read_file", "arguments": f'{{"path": "{path}"}}'},
        }
        body = "\n".join(
            f"def {rng.choice(WORDS)}_{i}(x):\n    return {rng.choice(WORDS)}(x, {rng.randrange(100)})"
            for i in range(rng.randrange(20, 60))
        )
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "content": body},
            {
                "role": "assistant",
                "content": f"{path} defines {rng.choice(WORDS)} helpers; next I will look at the callers.",
            },
            {"role": "user", "content": rng.choice(("Go on.", "Continue.", "Looks good, next file.", "OK."))},
        ]
    return messages, values


def main() -> None:
    rng = random.Random(11)
    corpus = [conversation(rng) for _ in range(CONVERSATIONS)]
    rows = []
    names = ["none", "truncate", "sliding_window", "clear_tool_outputs", "summarize", "layered"]
    builtin = strategies.builtin()
    for share in BUDGET_SHARES:
        for name in names:
            saved, kept, times, fits = [], [], [], 0
            for messages, values in corpus:
                before = strategies.count(messages)
                budget = int(before * share)
                began = time.perf_counter()
                if name == "none":
                    result_messages, after = messages, before
                else:
                    result = builtin[name].compact(messages, budget=budget, count_tokens=tokens.count_text)
                    result_messages, after = result.messages, result.tokens_after
                times.append((time.perf_counter() - began) * 1000)
                fits += after <= budget
                text = "\n".join(
                    tokens.message_text(m.get("content"))
                    + "".join(
                        (c.get("function") or {}).get("arguments", "") for c in m.get("tool_calls") or ()
                    )
                    for m in result_messages
                )
                saved.append(1 - after / before)
                kept.append(sum(1 for v in values if v in text) / len(values))
            rows.append(
                (
                    f"{share:.0%}",
                    name,
                    100 * statistics.mean(saved),
                    100 * statistics.mean(kept),
                    f"{fits}/{len(corpus)}",
                    statistics.median(times),
                )
            )
    sizes = [strategies.count(m) for m, _ in corpus]
    load = os.getloadavg()
    print(
        f"compaction benchmark: {CONVERSATIONS} conversations of {TURNS} turns, "
        f"~{statistics.mean(sizes):.0f} tokens, {FACTS} planted facts each "
        f"(load average {load[0]:.1f}, {os.cpu_count()} CPUs)"
    )
    print()
    print(
        f"{'budget':>6}  {'strategy':<20} {'tokens saved':>12} {'facts kept':>11}"
        f" {'fits budget':>12} {'median time':>12}"
    )
    for share, name, saved_pct, kept_pct, fits, ms in rows:
        print(f"{share:>6}  {name:<20} {saved_pct:>11.1f}% {kept_pct:>10.1f}% {fits:>12} {ms:>10.1f} ms")


if __name__ == "__main__":
    main()
