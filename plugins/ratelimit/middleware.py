"""Counts every request against its caller's bucket; answers 429 when the bucket is empty."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnemogate.core.errors import send_error
from mnemogate.core.registry import registry_of
from mnemogate.plugins.ratelimit.service import SERVICE, RateLimiter

STATE_KEY = "ratelimit"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.limiter: RateLimiter | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        limiter = self.limiter or self._resolve(scope)
        if scope["path"] in limiter.exempt:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        decision = await limiter.take(state.get("principal"), scope.get("client"))
        state[STATE_KEY] = decision
        headers = decision.headers()
        if not decision.allowed:
            await send_error(
                scope,
                send,
                429,
                f"rate limit of {decision.limit} requests exceeded; retry in {headers[-1][1].decode()} s",
                headers={k.decode(): v.decode() for k, v in headers},
            )
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _resolve(self, scope: Scope) -> RateLimiter:
        self.limiter = registry_of(scope).services[SERVICE]
        return self.limiter
