"""Placeholders, and putting the originals back into what the model answers.

A placeholder is ``[MASKED:<kind>:<content hash>]``. Only the placeholders of the request being
answered are restored (a model cannot be talked into revealing other masks). Answers are JSON,
so an original goes back JSON-escaped. In a stream, the model's text arrives in pieces, and a
placeholder can be cut between two events: each choice's text (and tool-call arguments) keeps
back a trailing piece that could still become a placeholder until the next event completes or
refutes it; the end of the choice (``finish_reason``) or of the stream lets it go.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

PREFIX = "[MASKED:"
PLACEHOLDER = re.compile(r"\[MASKED:([a-z0-9_]{1,40}):([0-9a-f]{16})\]")
_PLACEHOLDER_BYTES = re.compile(rb"\[MASKED:[a-z0-9_]{1,40}:[0-9a-f]{16}\]")
# a piece at the end of a text that a following piece could complete into a placeholder
_PARTIAL = re.compile(
    r"\[(?:M(?:A(?:S(?:K(?:E(?:D(?::(?:[a-z0-9_]{1,40}(?::[0-9a-f]{0,16})?)?)?)?)?)?)?)?)?\Z"
)


def placeholder(kind: str, content_hash: str) -> str:
    return f"[MASKED:{kind}:{content_hash}]"


def _escaped(originals: dict[str, str]) -> dict[bytes, bytes]:
    return {key.encode(): orjson.dumps(value)[1:-1] for key, value in originals.items()}


class ResponseRestorer:
    """For a whole (non-streamed) answer: its JSON bytes with the originals back in.
    ``counters.placeholders_restored`` counts what was put back (both restorers)."""

    def __init__(self, originals: dict[str, str], counters: Any) -> None:
        self.escaped = _escaped(originals)
        self.counters = counters

    def __call__(self, payload: bytes) -> bytes:
        if PREFIX.encode() not in payload:
            return payload
        return _PLACEHOLDER_BYTES.sub(self._one, payload)

    def _one(self, match: re.Match[bytes]) -> bytes:
        value = self.escaped.get(match.group(0))
        if value is None:
            return match.group(0)
        self.counters.placeholders_restored += 1
        return value


class StreamRestorer:
    """A chunk filter: SSE blocks in, SSE blocks with the originals back in out."""

    def __init__(self, originals: dict[str, str], counters: Any) -> None:
        self.originals = originals
        self.counters = counters
        self.held: dict[tuple[Any, ...], str] = {}

    def __call__(self, block: bytes) -> bytes:
        if not self.held and b"[" not in block:
            return block
        events = block.split(b"\n\n")
        changed = False
        for index, event in enumerate(events):
            if event:
                rewritten = self._event(event)
                if rewritten is not event:
                    events[index] = rewritten
                    changed = True
        return b"\n\n".join(events) if changed else block

    def _event(self, event: bytes) -> bytes:
        lines = event.split(b"\n")
        for index, line in enumerate(lines):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                if not self.held:
                    return event
                # the stream ended inside a possible placeholder: let the held text go first
                lines[index] = b"data: " + orjson.dumps(self._leftovers()) + b"\n\ndata: [DONE]"
                return b"\n".join(lines)
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(payload, dict) and self._chunk(payload):
                lines[index] = b"data: " + orjson.dumps(payload)
                return b"\n".join(lines)
        return event

    def _chunk(self, payload: dict[str, Any]) -> bool:
        changed = False
        for choice in payload.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            number = choice.get("index", 0)
            delta = choice.get("delta")
            finished = choice.get("finish_reason") is not None
            if not isinstance(delta, dict):
                if finished and self._has_held(number):
                    delta = choice["delta"] = {}
                else:
                    continue
            content = delta.get("content")
            if isinstance(content, str) or (finished and ("content", number) in self.held):
                text = self._text(("content", number), content or "", finished)
                if text != content:
                    delta["content"] = text
                    changed = True
            for call in delta.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    key = ("arguments", number, call.get("index", 0))
                    text = self._text(key, function["arguments"], finished)
                    if text != function["arguments"]:
                        function["arguments"] = text
                        changed = True
            if finished:
                changed |= self._flush_calls(number, delta)
        return changed

    def _has_held(self, number: Any) -> bool:
        return any(key[1] == number for key in self.held)

    def _text(self, key: tuple[Any, ...], piece: str, finished: bool) -> str:
        text = self.held.pop(key, "") + piece
        if "[" not in text:
            return text
        text = PLACEHOLDER.sub(self._one, text)
        if not finished:
            partial = _PARTIAL.search(text, max(0, len(text) - 80))
            if partial is not None:
                self.held[key] = text[partial.start() :]
                return text[: partial.start()]
        return text

    def _flush_calls(self, number: Any, delta: dict[str, Any]) -> bool:
        keys = [key for key in self.held if key[0] == "arguments" and key[1] == number]
        for key in keys:
            calls = delta.setdefault("tool_calls", [])
            calls.append({"index": key[2], "function": {"arguments": self.held.pop(key)}})
        return bool(keys)

    def _leftovers(self) -> dict[str, Any]:
        choices: dict[Any, dict[str, Any]] = {}
        for key, text in self.held.items():
            delta = choices.setdefault(key[1], {})
            if key[0] == "content":
                delta["content"] = text
            else:
                delta.setdefault("tool_calls", []).append({"index": key[2], "function": {"arguments": text}})
        self.held.clear()
        return {
            "object": "chat.completion.chunk",
            "choices": [{"index": n, "delta": d, "finish_reason": None} for n, d in choices.items()],
        }

    def _one(self, match: re.Match[str]) -> str:
        original = self.originals.get(match.group(0))
        if original is None:
            return match.group(0)
        self.counters.placeholders_restored += 1
        return original
