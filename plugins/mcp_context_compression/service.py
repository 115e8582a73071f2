"""Compression with the ``compress`` plugin's engine when it is running, else the built-in one.

The ``compress`` service (see PLUGINS.md) is called as ``compress_text(text)`` and
``compress_messages(messages)``, sync or async; a result may be the text / message list itself,
or an object or dict carrying it as ``text`` / ``messages``. Tokens before and after are counted
here, with the same tokenizer as the request log. A ``target_tokens`` budget the engine's result
still exceeds is met by eliding the middle (the built-in ``elide``).
"""

from __future__ import annotations

import inspect
from typing import Any

from mnemogate.core import tokens
from mnemogate.plugins.mcp_context_compression import engine
from mnemogate.plugins.mcp_context_compression.settings import ContextCompressionSettings

COMPRESS_SERVICE = "compress"


class CompressionError(ValueError):
    """The input cannot be compressed; the message is for the caller."""


class Compressor:
    def __init__(self, settings: ContextCompressionSettings, services: dict[str, Any]) -> None:
        self.settings = settings
        self.services = services

    def _plugin(self) -> Any:
        return self.services.get(COMPRESS_SERVICE) if self.settings.use_compress_plugin else None

    async def text(self, text: str, target_tokens: int | None) -> dict[str, Any]:
        if len(text) > self.settings.max_input_chars:
            raise CompressionError(
                f"the text is longer than max_input_chars ({self.settings.max_input_chars})"
            )
        plugin = self._plugin()
        if plugin is not None:
            compressed = _field(await _maybe_await(plugin.compress_text(text)), "text", str)
            elided = target_tokens is not None and tokens.count_text(compressed) > target_tokens
            if elided:
                compressed = engine.elide(compressed, target_tokens)  # type: ignore[arg-type]
        else:
            compressed = engine.compress_text(text, target_tokens)
            elided = False
        before, after = tokens.count_text(text), tokens.count_text(compressed)
        return {"text": compressed, **_figures(before, after), "engine": _engine(plugin, elided)}

    async def messages(self, messages: list[dict[str, Any]], target_tokens: int | None) -> dict[str, Any]:
        if sum(len(str(m.get("content") or "")) for m in messages) > self.settings.max_input_chars:
            raise CompressionError(
                f"the messages are longer than max_input_chars ({self.settings.max_input_chars})"
            )
        plugin = self._plugin()
        if plugin is not None:
            compressed = _field(await _maybe_await(plugin.compress_messages(messages)), "messages", list)
            elided = target_tokens is not None and tokens.count_messages(compressed) > target_tokens
            if elided:
                compressed = engine.compress_messages(compressed, target_tokens)
        else:
            compressed = engine.compress_messages(messages, target_tokens)
            elided = False
        before, after = tokens.count_messages(messages), tokens.count_messages(compressed)
        return {"messages": compressed, **_figures(before, after), "engine": _engine(plugin, elided)}


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _field(result: Any, name: str, kind: type) -> Any:
    """The compressed text or messages from whatever shape the engine answered."""
    if isinstance(result, kind):
        return result
    value = result.get(name) if isinstance(result, dict) else getattr(result, name, None)
    if not isinstance(value, kind):
        raise CompressionError(f"the compress plugin answered without {name}")
    return value


def _figures(before: int, after: int) -> dict[str, Any]:
    return {
        "tokens_before": before,
        "tokens_after": after,
        "saved_tokens": before - after,
        "ratio": round(after / before, 4) if before else 1.0,
    }


def _engine(plugin: Any, elided: bool) -> str:
    if plugin is None:
        return "builtin"
    return "compress+elide" if elided else "compress"
