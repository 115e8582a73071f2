"""Metrics (one Prometheus registry per app, shared with other plugins) and the tracer."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from mnemogate.core.errors import StartupError
from mnemogate.core.registry import Registry
from mnemogate.plugins.observability.settings import ObservabilitySettings

SERVICE = "metrics"
UNMATCHED = "<unmatched>"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """HTTP metrics plus get-or-create helpers other plugins use for their own series."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._series: dict[str, Any] = {}
        self.requests = self.counter(
            "mnemogate_http_requests_total",
            "HTTP requests by method, route and status",
            ("method", "route", "status"),
        )
        self.latency = self.histogram(
            "mnemogate_http_request_duration_seconds", "HTTP request latency by route", ("method", "route")
        )
        self.in_flight = self.gauge("mnemogate_http_requests_in_flight", "HTTP requests being served")
        self.plugins = self.gauge("mnemogate_plugins", "installed plugins by state", ("state",))
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        return self._series.get(name) or self._add(
            name, Counter(name, documentation, labels, registry=self.registry)
        )

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        return self._series.get(name) or self._add(
            name, Gauge(name, documentation, labels, registry=self.registry)
        )

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...] = (),
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
    ) -> Histogram:
        return self._series.get(name) or self._add(
            name, Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)
        )

    def _add(self, name: str, series: Any) -> Any:
        self._series[name] = series
        return series

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        children = self._children.get(key)
        if children is None:
            # Label lookups cost more than the observation; keep the children per route.
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def start(registry: Registry) -> None:
    metrics = Metrics()
    infos = registry.host.infos.values()
    metrics.plugins.labels("enabled").set(sum(1 for i in infos if i.enabled))
    metrics.plugins.labels("disabled").set(sum(1 for i in infos if not i.enabled))
    registry.provide(SERVICE, metrics, plugin="observability")
    settings: ObservabilitySettings = registry.plugin_settings("observability")
    if settings.tracing:
        registry.provide("tracer_provider", tracer_provider(settings), plugin="observability")


def tracer_provider(settings: ObservabilitySettings) -> Any:
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        raise StartupError(
            "plugin 'observability': tracing is on but OpenTelemetry is not installed; "
            "install mnemogate[otel] or set MNEMOGATE_PLUGINS__OBSERVABILITY__TRACING=false"
        )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    if settings.trace_exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = (
            OTLPSpanExporter(endpoint=settings.otlp_endpoint)
            if settings.otlp_endpoint
            else OTLPSpanExporter()
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


async def stop(registry: Registry) -> None:
    provider = registry.services.get("tracer_provider")
    if provider is not None:
        # Flushing spans is blocking HTTP: off the event loop, so an exporter talking to a
        # collector served by this same loop (or a slow one) cannot stall every other task.
        await asyncio.to_thread(provider.shutdown)
