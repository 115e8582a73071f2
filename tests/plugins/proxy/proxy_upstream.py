"""A real upstream for the gateway tests: an HTTP server speaking OpenAI's and Anthropic's wire
formats, whose answers the test scripts (errors, 429s, delays, slow streams, tool calls).

Each request takes the next scripted ``Turn`` (or the default: echo the last user message) and
is recorded with its body and headers; streams note when their client went away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Turn:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: str = "scripted failure"
    delay: float = 0.0  # before the status line
    reply: str | None = None
    tool_call: dict[str, Any] | None = None
    chunk_delay: float = 0.0  # between stream events
    hold: asyncio.Event | None = None  # a stream waits for this after its first event
    usage: bool = True


@dataclass
class Seen:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


class Upstream:
    def __init__(self) -> None:
        self.script: list[Turn] = []
        self.seen: list[Seen] = []
        self.disconnected = asyncio.Event()
        self.finished_streams = 0
        self.base = ""
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.openai, methods=["POST"]),
                Route("/v1/messages", self.anthropic, methods=["POST"]),
            ]
        )

    def then(self, *turns: Turn) -> Upstream:
        self.script.extend(turns)
        return self

    async def _take(self, request: Request) -> tuple[dict[str, Any], Turn]:
        body = orjson.loads(await request.body())
        self.seen.append(Seen(request.url.path, body, dict(request.headers), time.monotonic()))
        turn = self.script.pop(0) if self.script else Turn()
        if turn.delay:
            await asyncio.sleep(turn.delay)
        return body, turn

    @staticmethod
    def _reply(body: dict[str, Any], turn: Turn) -> str:
        if turn.reply is not None:
            return turn.reply
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        content = users[-1]["content"] if users else ""
        if isinstance(content, list):
            content = " ".join(p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text")
        return f"echo: {content}"

    async def _events(self, events: list[bytes], turn: Turn) -> AsyncIterator[bytes]:
        try:
            for index, event in enumerate(events):
                yield event
                if index == 0 and turn.hold is not None:
                    await asyncio.wait_for(turn.hold.wait(), 10)
                if turn.chunk_delay:
                    await asyncio.sleep(turn.chunk_delay)
            self.finished_streams += 1
        except asyncio.CancelledError:
            self.disconnected.set()
            raise

    # -- OpenAI ------------------------------------------------------------------------------------

    async def openai(self, request: Request) -> Response:
        body, turn = await self._take(request)
        if turn.status >= 400:
            error = {
                "error": {"message": turn.error, "type": "invalid_request_error", "code": f"e{turn.status}"}
            }
            return Response(orjson.dumps(error), turn.status, turn.headers, media_type="application/json")
        text = self._reply(body, turn)
        model = body.get("model")
        usage = {
            "prompt_tokens": 7,
            "completion_tokens": len(text.split()),
            "total_tokens": 7 + len(text.split()),
        }
        calls = None
        if turn.tool_call:
            calls = [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": turn.tool_call["name"],
                        "arguments": orjson.dumps(turn.tool_call["arguments"]).decode(),
                    },
                }
            ]
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if calls else text}
            if calls:
                message["tool_calls"] = calls
            answer = {
                "id": "chatcmpl-up",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [
                    {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
                ],
                "usage": usage,
            }
            return Response(orjson.dumps(answer), 200, turn.headers, media_type="application/json")

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            choices = [] if "usage" in extra else [{"index": 0, "delta": delta, "finish_reason": finish}]
            event = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": model}
            return b"data: " + orjson.dumps({**event, "choices": choices, **extra}) + b"\n\n"

        events = [chunk({"role": "assistant", "content": ""})]
        if calls:
            call = calls[0]
            events.append(
                chunk(
                    {"tool_calls": [{"index": 0, **call, "function": {**call["function"], "arguments": ""}}]}
                )
            )
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
        else:
            events += [chunk({"content": word + " "}) for word in text.split()]
        events.append(chunk({}, "tool_calls" if calls else "stop"))
        if turn.usage and (body.get("stream_options") or {}).get("include_usage"):
            events.append(chunk({}, usage=usage))
        events.append(b"data: [DONE]\n\n")
        return StreamingResponse(
            self._events(events, turn), headers=turn.headers, media_type="text/event-stream"
        )

    # -- Anthropic ---------------------------------------------------------------------------------

    async def anthropic(self, request: Request) -> Response:
        body, turn = await self._take(request)
        if turn.status >= 400:
            error = {"type": "error", "error": {"type": "overloaded_error", "message": turn.error}}
            return Response(orjson.dumps(error), turn.status, turn.headers, media_type="application/json")
        text = self._reply(body, turn)
        usage = {"input_tokens": 11, "output_tokens": len(text.split())}
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if turn.tool_call:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": turn.tool_call["name"],
                    "input": turn.tool_call["arguments"],
                }
            )
        if not body.get("stream"):
            message = {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": blocks,
                "stop_reason": "tool_use" if turn.tool_call else "end_turn",
                "usage": usage,
            }
            return Response(orjson.dumps(message), 200, turn.headers, media_type="application/json")

        def event(name: str, data: dict[str, Any]) -> bytes:
            return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"

        start = {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"], "content": []}
        events = [
            event("message_start", {"message": {**start, "usage": {"input_tokens": 11, "output_tokens": 0}}}),
            event("ping", {}),
            event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ]
        events += [
            event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w + " "}})
            for w in text.split()
        ]
        events.append(event("content_block_stop", {"index": 0}))
        if turn.tool_call:
            arguments = orjson.dumps(turn.tool_call["arguments"]).decode()
            tool = {"type": "tool_use", "id": "toolu_1", "name": turn.tool_call["name"], "input": {}}
            events.append(event("content_block_start", {"index": 1, "content_block": tool}))
            for part in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": part}
                events.append(event("content_block_delta", {"index": 1, "delta": delta}))
            events.append(event("content_block_stop", {"index": 1}))
        stop = "tool_use" if turn.tool_call else "end_turn"
        events.append(
            event(
                "message_delta",
                {"delta": {"stop_reason": stop}, "usage": {"output_tokens": len(text.split())}},
            )
        )
        events.append(event("message_stop", {}))
        return StreamingResponse(
            self._events(events, turn), headers=turn.headers, media_type="text/event-stream"
        )
