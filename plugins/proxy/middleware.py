"""Stamps when a request reached the gateway, so its overhead counts every middleware too."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send

CLOCK_KEY = "gateway_started"


class GatewayClockMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})[CLOCK_KEY] = time.perf_counter()
        await self.app(scope, receive, send)
