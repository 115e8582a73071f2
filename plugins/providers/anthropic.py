"""Anthropic's Messages API behind the OpenAI chat format, both ways, streaming included.

Requests: system messages become ``system``, assistant tool calls become ``tool_use`` blocks,
``tool`` messages become ``tool_result`` blocks, tools and tool_choice are translated and
``max_tokens`` is filled in when missing. Responses and stream events come back as OpenAI
chat completions and chunks (text, tool calls with streamed arguments, finish reason, usage).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from mnemogate.core.contracts import ChatContext, ProviderError
from mnemogate.plugins.providers.settings import AnthropicConfig
from mnemogate.plugins.providers.sse import DONE, parse_events, whole_events
from mnemogate.plugins.providers.upstream import HttpProvider, read_failure

PATH = "/v1/messages"
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}
# Fields of an OpenAI request that Anthropic understands under its own name.
PASSED_THROUGH = ("temperature", "top_p", "top_k", "thinking", "service_tier")


class AnthropicProvider(HttpProvider):
    kind = "anthropic"

    def __init__(self, config: AnthropicConfig) -> None:
        headers = {"anthropic-version": config.version}
        key = config.key()
        if key:
            headers["x-api-key"] = key
        super().__init__(config, headers)
        self.default_max_tokens = config.default_max_tokens

    async def complete(self, ctx: ChatContext) -> dict[str, Any]:
        response = await self.post(
            ctx, PATH, to_anthropic(ctx.body, ctx.model or "", self.default_max_tokens)
        )
        try:
            data = await response.read()
        except (TimeoutError, ConnectionError) as exc:
            raise read_failure(self.name, exc) from None
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProviderError(f"provider {self.name!r} sent a body that is not JSON", status=502) from None
        return to_openai(message, ctx.model or "")

    async def stream(self, ctx: ChatContext) -> AsyncIterator[bytes]:
        payload = to_anthropic(ctx.body, ctx.model or "", self.default_max_tokens)
        payload["stream"] = True
        response = await self.post(ctx, PATH, payload)
        include_usage = bool((ctx.body.get("stream_options") or {}).get("include_usage"))
        translator = StreamTranslator(ctx.model or "", include_usage)
        try:
            async for block in whole_events(response.chunks()):
                out = translator.feed(block)
                if out:
                    yield out
        except (TimeoutError, ConnectionError) as exc:
            raise read_failure(self.name, exc) from None
        finally:
            response.close()
        yield translator.finish()


# -- requests ------------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url[5:].partition(";base64,")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content or ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            blocks.append(_image_block(part))
    return blocks


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    try:
        arguments = orjson.loads(function.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        arguments = {"arguments": function.get("arguments")}
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments}


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    return None


def to_anthropic(body: dict[str, Any], model: str, default_max_tokens: int) -> dict[str, Any]:
    """An OpenAI chat request as an Anthropic Messages request."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        # Anthropic wants user and assistant turns to alternate: merge neighbours of one role.
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for message in body.get("messages") or ():
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(message.get("content")))
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": _text_of(message.get("content")),
            }
            add("user", [result])
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"))
            blocks += [_tool_use(call) for call in message.get("tool_calls") or ()]
            add("assistant", blocks)
        else:
            add("user", _content_blocks(message.get("content")))

    payload: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens,
    }
    if system:
        payload["system"] = "\n\n".join(system)
    for name in PASSED_THROUGH:
        if body.get(name) is not None:
            payload[name] = body[name]
    stop = body.get("stop")
    if stop:
        payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = body.get("tools")
    if tools:
        payload["tools"] = [
            {
                "name": tool["function"]["name"],
                "description": tool["function"].get("description", ""),
                "input_schema": tool["function"].get("parameters") or {"type": "object", "properties": {}},
            }
            for tool in tools
            if tool.get("type") == "function"
        ]
    choice = _tool_choice(body.get("tool_choice"))
    if choice is not None:
        payload["tool_choice"] = choice
    user = body.get("user")
    if user:
        payload["metadata"] = {"user_id": str(user)}
    return payload


# -- responses -----------------------------------------------------------------------------------


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    prompt = (
        usage.get("input_tokens", 0)
        + usage.get("cache_read_input_tokens", 0)
        + usage.get("cache_creation_input_tokens", 0)
    )
    completion = usage.get("output_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def to_openai(message: dict[str, Any], model: str) -> dict[str, Any]:
    """An Anthropic message as an OpenAI chat completion."""
    text = []
    tool_calls = []
    for block in message.get("content") or ():
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input")).decode(),
                    },
                }
            )
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text or not tool_calls else None,
    }
    if tool_calls:
        reply["tool_calls"] = tool_calls
    return {
        "id": message.get("id") or f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": FINISH_REASONS.get(message.get("stop_reason"), "stop"),
            }
        ],
        "usage": _usage(message.get("usage") or {}),
    }


class StreamTranslator:
    """Anthropic stream events in, OpenAI ``chat.completion.chunk`` events out."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}
        self.finished = False

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        event = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return b"data: " + orjson.dumps(event) + b"\n\n"

    def feed(self, block: bytes) -> bytes:
        out = []
        for name, data in parse_events(block):
            event = orjson.loads(data)
            kind = event.get("type") or name
            if kind == "message_start":
                message = event.get("message") or {}
                self.model = message.get("model") or self.model
                self.id = message.get("id") or self.id
                self.usage.update(message.get("usage") or {})
                out.append(self.chunk({"role": "assistant", "content": ""}))
            elif kind == "content_block_start":
                block_ = event.get("content_block") or {}
                if block_.get("type") == "tool_use":
                    index = self.tool_index.setdefault(event.get("index", 0), len(self.tool_index))
                    call = {
                        "index": index,
                        "id": block_.get("id"),
                        "type": "function",
                        "function": {"name": block_.get("name"), "arguments": ""},
                    }
                    out.append(self.chunk({"tool_calls": [call]}))
                elif block_.get("type") == "text" and block_.get("text"):
                    out.append(self.chunk({"content": block_["text"]}))
            elif kind == "content_block_delta":
                delta = event.get("delta") or {}
                if delta.get("type") == "text_delta":
                    out.append(self.chunk({"content": delta.get("text", "")}))
                elif delta.get("type") == "input_json_delta":
                    index = self.tool_index.get(event.get("index", 0), 0)
                    call = {"index": index, "function": {"arguments": delta.get("partial_json", "")}}
                    out.append(self.chunk({"tool_calls": [call]}))
            elif kind == "message_delta":
                self.usage.update(event.get("usage") or {})
                reason = (event.get("delta") or {}).get("stop_reason")
                out.append(self.chunk({}, FINISH_REASONS.get(reason, "stop")))
                self.finished = True
            elif kind == "error":
                error = event.get("error") or {}
                raise ProviderError(
                    f"provider stream failed: {error.get('message', 'unknown error')}",
                    status=529 if error.get("type") == "overloaded_error" else 502,
                    code=error.get("type"),
                )
        return b"".join(out)

    def finish(self) -> bytes:
        out = [] if self.finished else [self.chunk({}, "stop")]
        if self.include_usage:
            event = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": _usage(self.usage),
            }
            out.append(b"data: " + orjson.dumps(event) + b"\n\n")
        out.append(DONE)
        return b"".join(out)
