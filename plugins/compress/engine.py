"""Lossless or near-lossless shrinking of a context.

Lossless: trailing blanks go, runs of spaces inside a line (not indentation) shrink to one,
three or more newlines become two, a line repeated back to back is kept once with a count, and
JSON (a whole text that parses as JSON) is re-serialised compactly. Near-lossless: a block of
text (a paragraph, a file) that already appeared earlier in the conversation is replaced by a
reference to where it was (the same file read twice is in the context once), and a tool output
longer than ``fold_lines`` keeps its head and tail around a marker saying what was folded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

_INNER_BLANKS = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_BLANK_LINES = re.compile(r"\n{3,}")
_BLOCKS = re.compile(r"\n\s*\n")


@dataclass(frozen=True, slots=True)
class Options:
    json: bool = True
    repeated_block_chars: int = 200
    fold_lines: int = 200
    fold_head_lines: int = 60
    fold_tail_lines: int = 40


@dataclass(slots=True)
class Report:
    """What a compression did (counts of each kind of change)."""

    json_documents: int = 0
    repeated_lines: int = 0
    repeated_blocks: int = 0
    folded_outputs: int = 0
    folded_lines: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "json_documents": self.json_documents,
            "repeated_lines": self.repeated_lines,
            "repeated_blocks": self.repeated_blocks,
            "folded_outputs": self.folded_outputs,
            "folded_lines": self.folded_lines,
        }


def _json(text: str, report: Report) -> str | None:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{" or stripped[-1] not in "]}":
        return None
    try:
        document = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return None
    compact = orjson.dumps(document).decode()
    if len(compact) >= len(text):
        return None
    report.json_documents += 1
    return compact


def normalise(text: str, options: Options, report: Report) -> str:
    """The lossless part: JSON compacted, or whitespace and back-to-back repeated lines."""
    if options.json:
        compact = _json(text, report)
        if compact is not None:
            return compact
    lines: list[str] = []
    repeats = 0
    for line in text.split("\n"):
        line = _INNER_BLANKS.sub(" ", line.rstrip())
        if lines and line.strip() and line == lines[-1]:
            repeats += 1
            continue
        if repeats:
            lines.append(f"[previous line repeated {repeats} more times]")
            report.repeated_lines += repeats
            repeats = 0
        lines.append(line)
    if repeats:
        lines.append(f"[previous line repeated {repeats} more times]")
        report.repeated_lines += repeats
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def fold(text: str, options: Options, report: Report) -> str:
    lines = text.split("\n")
    if len(lines) <= options.fold_lines:
        return text
    head, tail = lines[: options.fold_head_lines], lines[len(lines) - options.fold_tail_lines :]
    folded = len(lines) - len(head) - len(tail)
    report.folded_outputs += 1
    report.folded_lines += folded
    return "\n".join([*head, f"[... {folded} lines folded ...]", *tail])


class _Blocks:
    """Blocks of text seen so far in a conversation, to replace the ones that come again."""

    def __init__(self, options: Options, report: Report) -> None:
        self.options = options
        self.report = report
        self.seen: dict[bytes, int] = {}

    def dedupe(self, text: str, where: int) -> str:
        if len(text) < self.options.repeated_block_chars:
            return text
        whole = self._key(text)
        if whole in self.seen:
            self.report.repeated_blocks += 1
            return f"[same content as message {self.seen[whole]} above]"
        self.seen[whole] = where
        parts = _BLOCKS.split(text)
        if len(parts) == 1:
            return text
        separators = _BLOCKS.findall(text)
        out: list[str] = []
        for index, block in enumerate(parts):
            if len(block) >= self.options.repeated_block_chars:
                key = self._key(block)
                first = self.seen.get(key)
                if first is not None:
                    self.report.repeated_blocks += 1
                    block = f"[repeated block from message {first} above]"
                else:
                    self.seen[key] = where
            out.append(block)
            if index < len(separators):
                out.append(separators[index])
        return "".join(out)

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.strip().encode(), digest_size=16).digest()


def compress_text(text: str, options: Options, report: Report | None = None) -> str:
    return normalise(text, options, report or Report())


def compress_messages(
    messages: list[dict[str, Any]], options: Options, report: Report | None = None
) -> list[dict[str, Any]]:
    """A compressed copy of an OpenAI message list: same messages, same roles, same tool calls.
    System messages and the last message are only normalised; repeats point back by message
    number (counted from 0)."""
    report = report or Report()
    blocks = _Blocks(options, report)
    last = len(messages) - 1
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            out.append(message)
            continue
        role = message.get("role")

        def shrink(text: str, index: int = index, role: Any = role) -> str:
            text = normalise(text, options, report)
            if role == "system" or index == last:
                return text
            if role == "tool":
                text = fold(text, options, report)
            return blocks.dedupe(text, index)

        content = message.get("content")
        if isinstance(content, str):
            message = {**message, "content": shrink(content)}
        elif isinstance(content, list):
            message = {
                **message,
                "content": [
                    {**p, "text": shrink(p["text"])}
                    if isinstance(p, dict) and isinstance(p.get("text"), str)
                    else p
                    for p in content
                ],
            }
        out.append(message)
    return out
