"""An OpenAI-compatible upstream that records every request byte for byte and answers by echoing
what it was sent, streaming in small pieces so that placeholders are cut between events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


class RecordingUpstream:
    def __init__(self, piece: int = 5) -> None:
        self.piece = piece
        self.raw: list[bytes] = []
        self.base = ""
        self.error: str | None = None  # answer 400 with this message + the echo
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    @property
    def everything(self) -> bytes:
        return b"\n".join(self.raw)

    @staticmethod
    def _echo(body: dict[str, Any]) -> tuple[str, str | None]:
        """Every text it was sent, joined, and the arguments of the last tool call."""
        texts, arguments = [], None
        for message in body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts += [p["text"] for p in content if isinstance(p, dict) and "text" in p]
            for call in message.get("tool_calls") or ():
                arguments = call["function"]["arguments"]
        return " | ".join(texts), arguments

    async def chat(self, request: Request) -> Response:
        raw = await request.body()
        self.raw.append(raw)
        body = orjson.loads(raw)
        text, arguments = self._echo(body)
        if self.error is not None:
            error = {"error": {"message": f"{self.error}: {text}", "type": "invalid_request_error"}}
            return Response(orjson.dumps(error), 400, media_type="application/json")
        calls = (
            [{"id": "call_1", "type": "function", "function": {"name": "echo", "arguments": arguments}}]
            if arguments is not None
            else None
        )
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if calls:
                message["tool_calls"] = calls
            answer = {
                "id": "chatcmpl-rec",
                "object": "chat.completion",
                "created": 1,
                "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
            return Response(orjson.dumps(answer), media_type="application/json")
        return StreamingResponse(
            self._stream(body.get("model"), text, arguments), media_type="text/event-stream"
        )

    async def _stream(self, model: Any, text: str, arguments: str | None) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            event = {
                "id": "chatcmpl-rec",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + orjson.dumps(event) + b"\n\n"

        yield chunk({"role": "assistant", "content": ""})
        for start in range(0, len(text), self.piece):
            yield chunk({"content": text[start : start + self.piece]})
        if arguments is not None:
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "echo", "arguments": ""},
                        }
                    ]
                }
            )
            for start in range(0, len(arguments), self.piece):
                piece = arguments[start : start + self.piece]
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield chunk({}, "stop")
        yield b"data: [DONE]\n\n"
