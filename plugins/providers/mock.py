"""The offline mock provider: deterministic replies, so a fresh install answers chat requests.

Models: ``echo`` repeats the last user message, ``scripted`` answers with the configured
replies in turn. A token is a word. A request can steer it with an extra ``mock`` object:
``{"reply": str, "status": int, "retry_after": seconds, "message": str, "latency_ms": float,
"tokens_per_second": float, "tool_call": {"name": str, "arguments": {...}}}`` — errors and
429s on demand for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from mnemogate.core.contracts import ChatContext, ModelInfo, ProviderError
from mnemogate.plugins.providers.settings import MockConfig
from mnemogate.plugins.providers.sse import DONE

GREETING = "Hello from mnemogate's mock provider."
CONTEXT_WINDOW = 1_000_000


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content if isinstance(content, str) else ""


def count_words(body: dict[str, Any]) -> int:
    return sum(
        len(_text(m.get("content")).split()) for m in body.get("messages") or () if isinstance(m, dict)
    )


class MockProvider:
    kind = "mock"

    def __init__(self, config: MockConfig) -> None:
        self.name = config.name
        self.config = config
        self._turn = itertools.count()
        self._models = [
            ModelInfo(model, config.name, CONTEXT_WINDOW, 0.0, 0.0) for model in ("echo", "scripted")
        ]

    async def models(self) -> list[ModelInfo]:
        return self._models

    def _controls(self, ctx: ChatContext) -> dict[str, Any]:
        controls = ctx.body.get("mock")
        controls = controls if isinstance(controls, dict) else {}
        status = controls.get("status")
        if isinstance(status, int) and status >= 400:
            retry = controls.get("retry_after")
            headers = {"retry-after": str(retry)} if retry is not None else {}
            ctx.upstream_headers = headers
            raise ProviderError(
                f"provider {self.name!r} answered {status}: {controls.get('message') or 'mock error'}",
                status=status,
                retry_after=float(retry) if retry is not None else None,
                headers=headers,
            )
        return controls

    def _reply(self, ctx: ChatContext, controls: dict[str, Any]) -> str:
        if isinstance(controls.get("reply"), str):
            return controls["reply"]
        if ctx.model == "scripted" and self.config.replies:
            return self.config.replies[next(self._turn) % len(self.config.replies)]
        users = [m for m in ctx.body.get("messages") or () if isinstance(m, dict) and m.get("role") == "user"]
        return (_text(users[-1].get("content")) if users else "") or GREETING

    async def _wait(self, controls: dict[str, Any]) -> None:
        latency = float(controls.get("latency_ms", self.config.latency_ms))
        if latency > 0:
            await asyncio.sleep(latency / 1000)

    @staticmethod
    def _tool_calls(controls: dict[str, Any]) -> list[dict[str, Any]] | None:
        call = controls.get("tool_call")
        if not isinstance(call, dict):
            return None
        arguments = orjson.dumps(call.get("arguments") or {}).decode()
        return [
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": call.get("name", "tool"), "arguments": arguments},
            }
        ]

    async def complete(self, ctx: ChatContext) -> dict[str, Any]:
        controls = self._controls(ctx)
        await self._wait(controls)
        reply = self._reply(ctx, controls)
        calls = self._tool_calls(controls)
        message: dict[str, Any] = {"role": "assistant", "content": None if calls else reply}
        if calls:
            message["tool_calls"] = calls
        prompt, completion = count_words(ctx.body), len(reply.split())
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": ctx.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    async def stream(self, ctx: ChatContext) -> AsyncIterator[bytes]:
        controls = self._controls(ctx)
        await self._wait(controls)
        reply = self._reply(ctx, controls)
        calls = self._tool_calls(controls)
        rate = float(controls.get("tokens_per_second", self.config.tokens_per_second))
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": ctx.model,
        }

        def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            choices = [{"index": 0, "delta": delta, "finish_reason": finish}] if delta or finish else []
            return b"data: " + orjson.dumps({**base, "choices": choices, **extra}) + b"\n\n"

        yield event({"role": "assistant", "content": ""})
        if calls:
            yield event({"tool_calls": [{"index": 0, **calls[0]}]})
        else:
            words = reply.split(" ")
            for index, word in enumerate(words):
                if rate > 0:
                    await asyncio.sleep(1 / rate)
                yield event({"content": word if index == 0 else " " + word})
        yield event({}, "tool_calls" if calls else "stop")
        if (ctx.body.get("stream_options") or {}).get("include_usage"):
            prompt, completion = count_words(ctx.body), len(reply.split())
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            yield event({}, usage=usage)
        yield DONE
