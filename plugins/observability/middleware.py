"""Request metrics and (when configured) OpenTelemetry spans, as pure-ASGI middleware."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnemogate.core.registry import Registry, registry_of, route_template
from mnemogate.plugins.observability.service import SERVICE, UNMATCHED, Metrics


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics: Metrics | None = None
        self.registry: Registry | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics or self._resolve(scope)
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.in_flight.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, tracking_send)
        finally:
            metrics.in_flight.dec()
            template = route_template(self.registry, scope) or UNMATCHED  # type: ignore[arg-type]
            metrics.observe_request(scope["method"], template, status, time.perf_counter() - started)

    def _resolve(self, scope: Scope) -> Metrics:
        self.registry = registry_of(scope)
        self.metrics = self.registry.services[SERVICE]
        return self.metrics


class TracingMiddleware:
    """OpenTelemetry's ASGI instrumentation with this app's tracer provider, when tracing is on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.handler: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if self.handler is None:
            provider = registry_of(scope).services.get("tracer_provider")
            if provider is None:
                self.handler = self.app
            else:
                from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

                self.handler = OpenTelemetryMiddleware(self.app, tracer_provider=provider)
        await self.handler(scope, receive, send)
