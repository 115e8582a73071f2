"""The built-in engine, used when the ``compress`` plugin is not running.

Lossless-looking first: trailing spaces go, runs of blanks inside a line shrink to one, three or
more newlines become two, a line repeated back to back is kept once with a count. Then, only if a
token budget is given and still exceeded, the middle of the text is cut at line boundaries and
replaced by a marker saying how much was left out (the start and the end of a context are what
usually matters).
"""

from __future__ import annotations

import re
from typing import Any

from mnemogate.core import tokens

_INNER_BLANKS = re.compile(r"(?<=\S)[ \t]{2,}")
_BLANK_LINES = re.compile(r"\n{3,}")
PROTECTED_ROLES = frozenset({"system"})


def normalise(text: str) -> str:
    lines: list[str] = []
    repeats = 0
    for line in text.splitlines():
        line = _INNER_BLANKS.sub(" ", line.rstrip())
        if lines and line and line == lines[-1]:
            repeats += 1
            continue
        if repeats:
            lines.append(f"[previous line repeated {repeats} more times]")
            repeats = 0
        lines.append(line)
    if repeats:
        lines.append(f"[previous line repeated {repeats} more times]")
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def elide(text: str, budget: int) -> str:
    """Keep whole lines from the start and the end within ``budget`` tokens, the marker included."""
    if tokens.count_text(text) <= budget:
        return text
    lines = text.splitlines()
    if len(lines) == 1:
        # One long line: keep its two ends, about four characters a token.
        size = max(budget - 12, 2) * 2
        return f"{text[:size]} [... middle omitted ...] {text[-size:]}"
    head, tail = _ends(lines, max(budget // 2, 1))
    while True:
        omitted = tokens.count_text("\n".join(lines[len(head) : len(lines) - len(tail)]))
        result = "\n".join([*head, f"[... {omitted} tokens omitted ...]", *tail])
        if tokens.count_text(result) <= budget or not (head or tail):
            return result
        (head if len(head) > len(tail) else tail).pop(-1 if len(head) > len(tail) else 0)


def _ends(lines: list[str], half: int) -> tuple[list[str], list[str]]:
    """The first lines, then the last ones, each within about ``half`` tokens."""
    head: list[str] = []
    used = 0
    for line in lines:
        used += tokens.count_text(line) + 1
        if used > half:
            break
        head.append(line)
    tail: list[str] = []
    used = 0
    for line in reversed(lines[len(head) :]):
        used += tokens.count_text(line) + 1
        if used > half:
            break
        tail.append(line)
    tail.reverse()
    return head, tail


def compress_text(text: str, budget: int | None = None) -> str:
    text = normalise(text)
    return elide(text, budget) if budget is not None else text


def compress_messages(messages: list[dict[str, Any]], budget: int | None = None) -> list[dict[str, Any]]:
    out = [_normalised(m) for m in messages]
    if budget is None:
        return out
    # Cut the longest contents first; system messages and the last message stay whole.
    while tokens.count_messages(out) > budget:
        candidates = [
            (tokens.count_text(m["content"]), i)
            for i, m in enumerate(out[:-1])
            if m.get("role") not in PROTECTED_ROLES and isinstance(m.get("content"), str)
        ]
        if not candidates:
            break
        size, index = max(candidates)
        excess = tokens.count_messages(out) - budget
        target = max(size - excess, 16)
        if target >= size:
            break
        out[index] = {**out[index], "content": elide(out[index]["content"], target)}
        if tokens.count_text(out[index]["content"]) >= size:
            break
    return out


def _normalised(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": normalise(content)}
    if isinstance(content, list):
        parts = [
            {**p, "text": normalise(p["text"])}
            if isinstance(p, dict) and isinstance(p.get("text"), str)
            else p
            for p in content
        ]
        return {**message, "content": parts}
    return dict(message)
