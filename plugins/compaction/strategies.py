"""The built-in compaction strategies.

Every strategy works on *units*: a message, or an assistant message with tool calls together
with the tool results that answer it, so a tool call is never kept without its result (or the
other way round). System messages always stay. ``budget`` is in tokens, counted as
``core/tokens.py`` counts a message (``count_message``).

* ``truncate``: drop the oldest units, keeping the system prompt, the first user turn and the
  most recent turns.
* ``sliding_window``: keep only the most recent units that fit (and the system prompt).
* ``clear_tool_outputs``: replace the content of old tool results by a one-line note, oldest
  first, keeping the most recent ``keep_tool_results``.
* ``summarize``: replace the oldest units by one summary message, written by ``summarize``
  (the configured provider when there is one; offline, the extractive summariser below).
* ``layered`` (the default): clear tool outputs, then summarise, then truncate when even the
  summary cannot make it fit.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mnemogate.core import tokens
from mnemogate.core.contracts import CompactionResult

Summarizer = Callable[[list[dict[str, Any]], int], str]
SUMMARY_PREFIX = "[Summary of the earlier conversation]\n"
CLEARED = "[tool output cleared to save context"
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_WORDS = re.compile(r"[A-Za-z0-9_\-]{3,}")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "that",
        "this",
        "with",
        "you",
        "are",
        "was",
        "have",
        "has",
        "not",
        "but",
        "can",
        "will",
        "from",
        "they",
        "what",
        "when",
        "your",
        "there",
        "their",
        "about",
        "would",
        "which",
        "into",
        "just",
        "like",
        "them",
        "then",
        "than",
        "been",
        "were",
        "also",
        "some",
        "more",
    ]
)


def count(messages: list[dict[str, Any]]) -> int:
    return sum(tokens.count_message(m) for m in messages)


def units(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Messages grouped so that tool calls and their results stay together."""
    grouped: list[list[dict[str, Any]]] = []
    open_calls: set[str] = set()
    for message in messages:
        role = message.get("role")
        if role == "tool" and grouped and (message.get("tool_call_id") in open_calls or not open_calls):
            grouped[-1].append(message)
            open_calls.discard(message.get("tool_call_id"))  # type: ignore[arg-type]
            continue
        grouped.append([message])
        open_calls = {c.get("id") for c in message.get("tool_calls") or () if isinstance(c, dict)}
        open_calls.discard(None)  # type: ignore[arg-type]
    return grouped


def _flat(groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [m for g in groups for m in g]


def _result(before: int, kept: list[dict[str, Any]], removed: list[dict[str, Any]]) -> CompactionResult:
    return CompactionResult(messages=kept, tokens_before=before, tokens_after=count(kept), removed=removed)


def _split_system(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    system = [m for m in messages if m.get("role") == "system"]
    rest = [m for m in messages if m.get("role") != "system"]
    return system, units(rest)


def _recent(groups: list[list[dict[str, Any]]], budget: int) -> int:
    """Index of the first of the most recent units that fit in ``budget`` (the last one always)."""
    used = 0
    start = len(groups)
    for index in range(len(groups) - 1, -1, -1):
        size = count(groups[index])
        if used + size > budget and start < len(groups):
            break
        used += size
        start = index
    return start


def extractive_summary(messages: list[dict[str, Any]], budget: int) -> str:
    """The most informative sentences (rare words, numbers, names, paths weigh most; repeats are
    kept once), in their original order, within ``budget`` tokens."""
    sentences: list[tuple[int, str, str]] = []
    seen: set[str] = set()
    for order, message in enumerate(messages):
        text = tokens.message_text(message.get("content"))
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict):
                function = call.get("function") or {}
                text += f"\ncalled {function.get('name')}({str(function.get('arguments', ''))[:200]})"
        for sentence in _SENTENCES.split(text):
            sentence = sentence.strip()[:400]
            if len(sentence) > 8 and sentence not in seen and not sentence.startswith(CLEARED):
                seen.add(sentence)
                sentences.append((order, str(message.get("role")), sentence))
    documents = Counter(w for _, _, s in sentences for w in {w.lower() for w in _WORDS.findall(s)})
    total = len(sentences) or 1

    def score(item: tuple[int, str, str]) -> float:
        words = [w for w in _WORDS.findall(item[2]) if w.lower() not in _STOP]
        if not words:
            return 0.0
        rarity = sum(math.log(total / documents[w.lower()]) for w in words) / len(words) ** 0.5
        specific = sum(1 for w in words if any(c.isdigit() for c in w) or w[:1].isupper())
        return rarity + specific + (1.0 if item[1] == "user" else 0.0)

    chosen: list[tuple[int, int, str]] = []
    used = tokens.count_text(SUMMARY_PREFIX)
    for index, item in sorted(enumerate(sentences), key=lambda pair: -score(pair[1])):
        line = f"- {item[1]}: {item[2]}"
        size = tokens.count_text(line) + 1
        if used + size > budget:
            continue
        chosen.append((item[0], index, line))
        used += size
    chosen.sort()
    return "\n".join(line for *_, line in chosen)


@dataclass(frozen=True, slots=True)
class Truncate:
    name: str = "truncate"

    def compact(
        self, messages: list[dict[str, Any]], *, budget: int, count_tokens: Callable[[str], int] | None = None
    ) -> CompactionResult:
        before = count(messages)
        system, groups = _split_system(messages)
        first = next((i for i, g in enumerate(groups) if g[0].get("role") == "user"), None)
        pinned = [groups[first]] if first is not None else []
        room = budget - count(system) - count(_flat(pinned))
        tail = groups[(first + 1 if first is not None else 0) :]
        start = _recent(tail, room)
        removed = _flat(tail[:start])
        kept = system + _flat(pinned) + _flat(tail[start:])
        kept_ids = {id(m) for m in kept}
        ordered = [m for m in messages if id(m) in kept_ids]
        return _result(before, ordered, removed)


@dataclass(frozen=True, slots=True)
class SlidingWindow:
    name: str = "sliding_window"

    def compact(
        self, messages: list[dict[str, Any]], *, budget: int, count_tokens: Callable[[str], int] | None = None
    ) -> CompactionResult:
        before = count(messages)
        system, groups = _split_system(messages)
        start = _recent(groups, budget - count(system))
        kept_ids = {id(m) for m in system + _flat(groups[start:])}
        return _result(before, [m for m in messages if id(m) in kept_ids], _flat(groups[:start]))


@dataclass(frozen=True, slots=True)
class ClearToolOutputs:
    name: str = "clear_tool_outputs"
    keep_tool_results: int = 2

    def compact(
        self, messages: list[dict[str, Any]], *, budget: int, count_tokens: Callable[[str], int] | None = None
    ) -> CompactionResult:
        before = count(messages)
        out = list(messages)
        tool_positions = [i for i, m in enumerate(out) if m.get("role") == "tool"]
        clearable = tool_positions[: max(0, len(tool_positions) - self.keep_tool_results)]
        removed = []
        total = before
        for index in clearable:
            if total <= budget:
                break
            message = out[index]
            size = tokens.count_message(message)
            note = f"{CLEARED}: {size} tokens]"
            out[index] = {**message, "content": note}
            removed.append(message)
            total += tokens.count_message(out[index]) - size
        return _result(before, out, removed)


@dataclass(frozen=True, slots=True)
class Summarize:
    """Summarise the oldest units into one message, keeping the system prompt and the recent
    units that fit in what the summary leaves (``summary_share`` of the budget at most)."""

    summarize: Summarizer = extractive_summary
    name: str = "summarize"
    summary_share: float = 0.25

    def compact(
        self, messages: list[dict[str, Any]], *, budget: int, count_tokens: Callable[[str], int] | None = None
    ) -> CompactionResult:
        before = count(messages)
        system, groups = _split_system(messages)
        summary_budget = max(int(budget * self.summary_share), 64)
        start = _recent(groups, budget - count(system) - summary_budget)
        if start == 0:
            return _result(before, list(messages), [])
        old = _flat(groups[:start])
        summary = self.summarize(old, summary_budget - tokens.PER_MESSAGE)
        note = {"role": "user", "content": SUMMARY_PREFIX + summary}
        kept = [*system, note, *_flat(groups[start:])]
        return _result(before, kept, old)


@dataclass(frozen=True, slots=True)
class Layered:
    """Clear tool outputs, then summarise, then truncate as the fallback."""

    summarize: Summarizer = extractive_summary
    name: str = "layered"

    def compact(
        self, messages: list[dict[str, Any]], *, budget: int, count_tokens: Callable[[str], int] | None = None
    ) -> CompactionResult:
        before = count(messages)
        removed: list[dict[str, Any]] = []
        current = list(messages)
        for strategy in (ClearToolOutputs(), Summarize(self.summarize), Truncate()):
            if count(current) <= budget:
                break
            step = strategy.compact(current, budget=budget)
            current = step.messages
            removed += step.removed
        return _result(before, current, removed)


def builtin(summarize: Summarizer = extractive_summary) -> dict[str, Any]:
    return {
        strategy.name: strategy
        for strategy in (
            Truncate(),
            SlidingWindow(),
            ClearToolOutputs(),
            Summarize(summarize),
            Layered(summarize),
        )
    }
