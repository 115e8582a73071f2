"""The observability plugin: Prometheus metrics at /metrics and OpenTelemetry traces over OTLP."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from mnemogate.core.errors import StartupError
from mnemogate.core.plugins import BUILTIN_PLUGINS
from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app, running, served

UNMATCHED = "<unmatched>"


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an error in the envelope, carrying the response's request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert {"code", "message", "type", "request_id"} <= set(error)
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert error["code"] == code
    return error


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert "version=" in response.headers["content-type"]
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def requests_total(samples: Samples, method: str, route: str, status: int) -> float | None:
    return value(samples, "mnemogate_http_requests_total", method=method, route=route, status=str(status))


def routes_seen(samples: Samples) -> set[str]:
    return {dict(labels)["route"] for name, labels in samples if name == "mnemogate_http_requests_total"}


@pytest.fixture
def configured_app(mnemogate_settings: Settings) -> Any:
    def factory(config: dict[str, Any] | None = None, *, disabled: Any = (), **overrides: Any) -> FastAPI:
        update = dict(overrides)
        if config is not None:
            update["plugins"] = PluginsConfig(**config)
        return build_app(mnemogate_settings.model_copy(update=update), disabled=disabled)

    return factory


# -- metrics -------------------------------------------------------------------------------------


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert "# TYPE mnemogate_http_requests_total counter" in text
    assert "# TYPE mnemogate_http_request_duration_seconds histogram" in text
    assert "# TYPE mnemogate_http_requests_in_flight gauge" in text
    assert "# TYPE mnemogate_plugins gauge" in text
    assert "process_cpu_seconds_total" in text or "python_info" in text


async def test_requests_are_counted_by_route_template(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await client.get("/api/v1/stats")).status_code == 200
    created = (await client.post("/api/v1/keys", json={"name": "k", "scopes": ["admin"]})).json()
    key = {"X-API-Key": created["key"]}
    other = (await client.post("/api/v1/keys", json={"name": "o", "scopes": ["read"]}, headers=key)).json()
    assert (await client.delete(f"/api/v1/keys/{other['id']}", headers=key)).status_code == 200
    assert_error(await client.delete(f"/api/v1/keys/{other['id'][:-4]}beef", headers=key), 404)
    assert_error(await client.get("/no/such/path", headers=key), 404)
    assert_error(await client.get("/another/missing/path", headers=key), 404)

    samples = await scrape(client, key)
    assert requests_total(samples, "GET", "/api/v1/stats", 200) == 3
    assert requests_total(samples, "POST", "/api/v1/keys", 201) == 2
    assert requests_total(samples, "DELETE", "/api/v1/keys/{key_id}", 200) == 1
    assert requests_total(samples, "DELETE", "/api/v1/keys/{key_id}", 404) == 1
    assert requests_total(samples, "GET", UNMATCHED, 404) == 2
    # No concrete id or unknown path becomes a label of its own.
    seen = routes_seen(samples)
    assert not [route for route in seen if other["id"] in route or "missing" in route or "such" in route]
    assert seen <= {*(r["path"] for r in await all_routes(client, key)), UNMATCHED}


async def all_routes(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    return (await client.get("/api/v1/routes", params={"limit": 500}, headers=headers)).json()["items"]


async def test_latency_histogram_and_in_flight_gauge(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await client.get("/api/v1/plugins")
    samples = await scrape(client)
    labels = {"method": "GET", "route": "/api/v1/plugins"}
    assert value(samples, "mnemogate_http_request_duration_seconds_count", **labels) == 2
    assert value(samples, "mnemogate_http_request_duration_seconds_sum", **labels) > 0
    buckets = {
        dict(labels)["le"]: v
        for (name, labels), v in samples.items()
        if name == "mnemogate_http_request_duration_seconds_bucket"
        and dict(labels)["route"] == "/api/v1/plugins"
    }
    assert buckets["+Inf"] == 2
    counts = [buckets[le] for le in sorted(buckets, key=float)]
    assert counts == sorted(counts), "histogram buckets are cumulative"
    # The scrape itself is the one request in flight while it renders.
    assert value(samples, "mnemogate_http_requests_in_flight") == 1
    after = await scrape(client)
    assert requests_total(after, "GET", "/metrics", 200) == 1  # the first scrape, counted when done


async def test_plugin_gauge(client: httpx.AsyncClient) -> None:
    samples = await scrape(client)
    assert value(samples, "mnemogate_plugins", state="enabled") == len(BUILTIN_PLUGINS)
    assert value(samples, "mnemogate_plugins", state="disabled") == 0


async def test_plugin_gauge_counts_disabled_plugins(make_client: Any) -> None:
    async with make_client(disabled=["ratelimit", "auth"]) as client:
        samples = await scrape(client)
    assert value(samples, "mnemogate_plugins", state="enabled") == len(BUILTIN_PLUGINS) - 2
    assert value(samples, "mnemogate_plugins", state="disabled") == 2


async def test_refused_requests_are_counted(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/v1/keys", json={"name": "k", "scopes": ["read"]})).json()
    assert_error(await client.get("/api/v1/stats"), 401)
    assert_error(await client.get("/api/v1/keys", headers={"X-API-Key": created["key"]}), 403)
    samples = await scrape(client, {"X-API-Key": created["key"]})
    assert requests_total(samples, "GET", "/api/v1/keys", 403) == 1
    assert (
        sum(
            v
            for (n, labels), v in samples.items()
            if n == "mnemogate_http_requests_total" and ("status", "401") in labels
        )
        == 1
    )


async def test_metrics_need_read_scope_once_keys_exist(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 200
    created = (await client.post("/api/v1/keys", json={"name": "scraper", "scopes": ["read"]})).json()
    error = assert_error(await client.get("/metrics"), 401, "unauthorized")
    assert error["type"] == "authentication_error"
    assert_error(await client.get("/metrics", headers={"X-API-Key": "mg_wrong"}), 401)
    assert (
        await client.get("/metrics", headers={"Authorization": f"Bearer {created['key']}"})
    ).status_code == 200


async def test_each_app_has_its_own_metrics(make_client: Any) -> None:
    async with make_client() as first:
        for _ in range(4):
            await first.get("/api/v1/stats")
    async with make_client() as second:
        samples = await scrape(second)
    assert requests_total(samples, "GET", "/api/v1/stats", 200) is None


async def test_metrics_over_a_real_server(make_app: Any) -> None:
    async with served(make_app()) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        await client.get("/api/v1/health")
        samples = await scrape(client)
    assert requests_total(samples, "GET", "/api/v1/health", 200) == 1


# -- tracing -------------------------------------------------------------------------------------


class Collector:
    """A minimal OTLP/HTTP trace receiver: records every export request it is sent."""

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        self.content_types: list[str] = []
        self.app = FastAPI()

        @self.app.post("/v1/traces")
        async def traces(request: Request) -> Response:
            self.content_types.append(request.headers.get("content-type", ""))
            self.exports.append(ExportTraceServiceRequest.FromString(await request.body()))
            return Response(b"", media_type="application/x-protobuf")

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) for every span received."""
        found = []
        for export in self.exports:
            for resource_spans in export.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    found.extend((resource, span) for span in scope_spans.spans)
        return found


def attributes(span: Any) -> dict[str, Any]:
    result = {}
    for attribute in span.attributes:
        field = attribute.value.WhichOneof("value")
        result[attribute.key] = getattr(attribute.value, field) if field else None
    return result


@contextlib.asynccontextmanager
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    receiver = Collector()
    async with served(receiver.app) as base_url:
        yield receiver, f"{base_url}/v1/traces"


def traced(configured_app: Any, endpoint: str, **extra: Any) -> FastAPI:
    return configured_app({"observability": {"tracing": True, "otlp_endpoint": endpoint, **extra}})


async def test_requests_are_traced_to_an_otlp_collector(
    configured_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with collector() as (receiver, endpoint):
        async with running(traced(configured_app, endpoint)) as client:
            response = await client.get("/api/v1/stats", headers={"X-Request-ID": "traced-1"})
            assert response.status_code == 200
            assert_error(await client.get("/nowhere"), 404)
        # Shutdown flushed the spans.
        assert receiver.exports, "no export arrived"
        assert all(ct == "application/x-protobuf" for ct in receiver.content_types)
    spans = receiver.spans()
    servers = [(resource, span) for resource, span in spans if span.kind == span.SPAN_KIND_SERVER]
    targets = {
        attributes(span).get("http.target") or attributes(span).get("url.path"): span for _, span in servers
    }
    assert "/api/v1/stats" in targets
    assert "/nowhere" in targets
    stats = targets["/api/v1/stats"]
    assert stats.name.startswith("GET")
    assert (
        attributes(stats).get("http.status_code", attributes(stats).get("http.response.status_code")) == 200
    )
    assert len(stats.trace_id) == 16 and any(stats.trace_id)
    assert all(resource["service.name"] == "mnemogate" for resource, _ in spans)
    failures = [
        r for r in caplog.records if r.name.startswith("opentelemetry") and r.levelno >= logging.WARNING
    ]
    assert failures == [], [r.getMessage() for r in failures]


async def test_the_service_name_is_configurable(configured_app: Any) -> None:
    # The app stops (and flushes) before the collector does.
    async with (
        collector() as (receiver, endpoint),
        running(traced(configured_app, endpoint, service_name="gateway-eu")) as client,
    ):
        await client.get("/health")
    resources = [resource for resource, _ in receiver.spans()]
    assert resources and all(r["service.name"] == "gateway-eu" for r in resources)


async def test_without_tracing_nothing_is_exported(configured_app: Any) -> None:
    async with collector() as (receiver, endpoint):
        app = configured_app({"observability": {"otlp_endpoint": endpoint}})
        async with running(app) as client:
            await client.get("/api/v1/stats")
    assert receiver.exports == []


@pytest.mark.parametrize(
    ("settings", "detail"),
    [
        ({"trace_exporter": "zipkin"}, "trace_exporter"),
        ({"tracing": "maybe"}, "tracing"),
        ({"tracer": True}, "tracer"),
    ],
)
def test_invalid_settings_stop_the_app(configured_app: Any, settings: dict[str, Any], detail: str) -> None:
    with pytest.raises(StartupError) as failure:
        configured_app({"observability": settings})
    assert str(failure.value).startswith("plugin 'observability':")
    assert detail in str(failure.value)
