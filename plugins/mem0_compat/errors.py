"""Errors in Mem0's shape on Mem0's paths: ``{"detail": "..."}`` (a list of ``{loc, msg}`` for
invalid requests, as FastAPI answers), which ``mem0ai``'s clients read. Every other path keeps
mnemogate's envelope. A middleware rather than handlers: errors of the auth, rate-limit and
body-limit middleware (401, 429, 413) reach Mem0 clients in their shape too."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The paths Mem0's REST server and platform API own (each also the root of its sub-paths).
MEM0_PATHS = (
    "/memories",
    "/search",
    "/reset",
    "/configure",
    "/entities",
    "/v1/ping",
    "/v1/memories",
    "/v3/memories",
    "/v1/entities",
    "/v2/entities",
    "/v1/batch",
    "/v1/feedback",
)


class Mem0Error(BaseModel):
    detail: str | list[dict[str, Any]]


MEM0_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Mem0Error, "description": "Client error (Mem0's shape)"},
    "5XX": {"model": Mem0Error, "description": "Server error (Mem0's shape)"},
}


def is_mem0_path(path: str) -> bool:
    return any(path == root or path.startswith(root + "/") for root in MEM0_PATHS)


def mem0_body(body: bytes) -> bytes | None:
    """The Mem0 form of an error envelope; None when ``body`` is not one."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict) or "message" not in error:
        return None
    details = error.get("details")
    return orjson.dumps({"detail": details if isinstance(details, list) else error["message"]})


class Mem0ErrorShape:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_mem0_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def reshaping_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            reshaped = mem0_body(body)
            if reshaped is not None:
                body = reshaped
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, reshaping_send)
