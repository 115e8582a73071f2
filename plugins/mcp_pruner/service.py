"""Pruning a message list to a token budget.

Messages are grouped into units first: an assistant message that calls tools together with the
tool results answering it is one unit, kept or removed whole, so no tool result loses its call.
System messages and the last ``keep_last`` units are never removed. Every other unit gets a
score, ``(1 - w) * relevance + w * recency``: relevance to the query (by default the last user
message) is the cosine similarity of embeddings from a registered embedder, or, without one, a
lexical overlap weighted by term rarity, scaled so the most relevant unit has 1; recency is the
unit's position (0 first, 1 last). The lowest scores go
first until the list fits.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mnemogate.core import tokens
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_pruner.settings import PrunerSettings

_WORD = re.compile(r"\w{2,}", re.UNICODE)


class PruneError(ValueError):
    """The input cannot be pruned; the message is for the caller."""


@dataclass(slots=True)
class Unit:
    indices: list[int]
    tokens: int
    text: str
    protected: bool
    relevance: float = 0.0
    recency: float = 0.0
    score: float = 0.0


def units_of(messages: list[dict[str, Any]]) -> list[list[int]]:
    """Indices grouped so a tool call and its results stay together."""
    groups: list[list[int]] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        group = [i]
        if message.get("role") == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            answering = "function" if message.get("function_call") else "tool"
            call_ids = {c.get("id") for c in message.get("tool_calls") or () if isinstance(c, dict)}
            j = i + 1
            while j < len(messages) and messages[j].get("role") == answering:
                if answering == "tool" and call_ids and messages[j].get("tool_call_id") not in call_ids:
                    break
                group.append(j)
                j += 1
        groups.append(group)
        i = group[-1] + 1
    return groups


def _text(message: dict[str, Any]) -> str:
    calls = " ".join(
        f"{(c.get('function') or {}).get('name', '')} {(c.get('function') or {}).get('arguments', '')}"
        for c in message.get("tool_calls") or ()
        if isinstance(c, dict)
    )
    return f"{tokens.message_text(message.get('content'))} {calls}".strip()


class Pruner:
    def __init__(self, registry: Registry, settings: PrunerSettings) -> None:
        self.registry = registry
        self.settings = settings
        self._embedders: dict[str, Any] = {}

    def _embedder(self) -> tuple[Any, str | None, str | None]:
        """(embedder, its name, why there is none)."""
        available = self.registry.embedders
        name = self.settings.embedder or next(iter(available), None)
        if name is None:
            return None, None, "no embedder is registered"
        if name not in available:
            return None, None, f"the embedder {name!r} is not registered"
        if name not in self._embedders:
            value = available[name]
            self._embedders[name] = value if hasattr(value, "embed") else value(self.registry)
        return self._embedders[name], name, None

    async def prune(
        self,
        messages: list[dict[str, Any]],
        budget: int,
        query: str | None,
        keep_last: int | None,
        recency_weight: float | None,
    ) -> dict[str, Any]:
        if len(messages) > self.settings.max_messages:
            raise PruneError(f"more than max_messages ({self.settings.max_messages}) messages")
        if any(not isinstance(m, dict) or not isinstance(m.get("role"), str) for m in messages):
            raise PruneError("every message needs a role")
        keep_last = self.settings.keep_last if keep_last is None else keep_last
        weight = self.settings.recency_weight if recency_weight is None else recency_weight
        groups = units_of(messages)
        units = [
            Unit(
                group,
                sum(tokens.count_message(messages[i]) for i in group),
                " ".join(_text(messages[i]) for i in group),
                protected=position >= len(groups) - keep_last
                or all(messages[i].get("role") == "system" for i in group),
            )
            for position, group in enumerate(groups)
        ]
        before = sum(u.tokens for u in units)
        if query is None:
            query = next((_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
        method = await self._score(units, query, weight)
        total = before
        removed: list[Unit] = []
        if total > budget:
            for unit in sorted((u for u in units if not u.protected), key=lambda u: (u.score, u.indices[0])):
                if total <= budget:
                    break
                removed.append(unit)
                total -= unit.tokens
        gone = {i for unit in removed for i in unit.indices}
        return {
            "messages": [m for i, m in enumerate(messages) if i not in gone],
            "removed": [
                {
                    "indices": unit.indices,
                    "roles": [messages[i].get("role") for i in unit.indices],
                    "tokens": unit.tokens,
                    "relevance": round(unit.relevance, 4),
                    "recency": round(unit.recency, 4),
                    "score": round(unit.score, 4),
                }
                for unit in sorted(removed, key=lambda u: u.indices[0])
            ],
            "tokens_before": before,
            "tokens_after": total,
            "budget": budget,
            "within_budget": total <= budget,
            "query": query[:200],
            "relevance": method,
        }

    async def _score(self, units: list[Unit], query: str, weight: float) -> dict[str, Any]:
        candidates = [u for u in units if not u.protected]
        for position, unit in enumerate(units):
            unit.recency = position / (len(units) - 1) if len(units) > 1 else 1.0
        method: dict[str, Any]
        embedder, name, missing = self._embedder()
        if not candidates or not query:
            method = {"method": "none", "reason": "nothing to score" if query else "no query"}
        elif embedder is not None:
            try:
                vectors = await embedder.embed([query, *(u.text for u in candidates)])
                similarities = (vectors[1:] @ vectors[0]).tolist()
            except Exception as exc:
                method = self._lexical(
                    candidates, query, f"the embedder {name!r} failed ({type(exc).__name__})"
                )
            else:
                for unit, similarity in zip(candidates, similarities, strict=True):
                    unit.relevance = max(float(similarity), 0.0)
                method = {"method": "embedding", "embedder": name}
        else:
            method = self._lexical(candidates, query, missing or "")
        # Relative to the most relevant candidate, so relevance and recency weigh on one scale.
        strongest = max((u.relevance for u in candidates), default=0.0)
        for unit in candidates:
            unit.relevance = unit.relevance / strongest if strongest > 0 else 0.0
            unit.score = (1 - weight) * unit.relevance + weight * unit.recency
        return method

    @staticmethod
    def _lexical(candidates: list[Unit], query: str, reason: str) -> dict[str, Any]:
        """Share of the query's words a unit contains, each word weighted by its rarity."""
        words = [set(_WORD.findall(u.text.lower())) for u in candidates]
        frequency = Counter(word for unit_words in words for word in unit_words)
        wanted = set(_WORD.findall(query.lower()))
        weights = {w: math.log(1 + len(candidates) / (1 + frequency[w])) for w in wanted}
        total = sum(weights.values()) or 1.0
        for unit, unit_words in zip(candidates, words, strict=True):
            unit.relevance = sum(weights[w] for w in wanted & unit_words) / total
        return {"method": "lexical", "reason": reason}
