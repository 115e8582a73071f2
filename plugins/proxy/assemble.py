"""A streamed answer assembled into the chat completion it amounts to (for logs and hooks)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

_DATA = b"data:"


def assemble(blocks: Iterable[bytes]) -> dict[str, Any]:
    """The ``chat.completion`` equivalent of a stream of ``chat.completion.chunk`` events."""
    head: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for block in blocks:
        for line in block.split(b"\n"):
            if not line.startswith(_DATA):
                continue
            payload = line[5:].strip()
            if not payload or payload == b"[DONE]":
                continue
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(chunk, dict) or "error" in chunk:
                continue
            if not head:
                head = {k: chunk.get(k) for k in ("id", "created", "model")}
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices") or ():
                _merge(choices.setdefault(choice.get("index", 0), {"content": [], "tools": {}}), choice)
    return {
        **head,
        "object": "chat.completion",
        "choices": [_choice(index, acc) for index, acc in sorted(choices.items())],
        **({"usage": usage} if usage else {}),
    }


def _merge(acc: dict[str, Any], choice: dict[str, Any]) -> None:
    delta = choice.get("delta") or {}
    if delta.get("content"):
        acc["content"].append(delta["content"])
    for call in delta.get("tool_calls") or ():
        slot = acc["tools"].setdefault(call.get("index", 0), {"id": None, "name": "", "arguments": []})
        slot["id"] = call.get("id") or slot["id"]
        function = call.get("function") or {}
        slot["name"] += function.get("name") or ""
        slot["arguments"].append(function.get("arguments") or "")
    if choice.get("finish_reason"):
        acc["finish_reason"] = choice["finish_reason"]


def _choice(index: int, acc: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(acc["content"]) or None}
    if acc["tools"]:
        message["tool_calls"] = [
            {
                "id": t["id"],
                "type": "function",
                "function": {"name": t["name"], "arguments": "".join(t["arguments"])},
            }
            for _, t in sorted(acc["tools"].items())
        ]
    return {"index": index, "message": message, "finish_reason": acc.get("finish_reason")}
