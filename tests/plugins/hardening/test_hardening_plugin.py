"""The hardening plugin: body limit, request ids, security headers, CORS and the access log."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mnemogate.core.errors import StartupError
from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app, running, served

LIMIT = 1000
HEX_ID = re.compile(r"[0-9a-f]{32}")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
ORIGIN = "https://app.example"


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


def assert_too_large(response: httpx.Response, limit: int = LIMIT) -> None:
    error = assert_error(response, 413, "payload_too_large")
    assert error["type"] == "invalid_request_error"
    assert str(limit) in error["message"]


@pytest.fixture
def configured_app(mnemogate_settings: Settings) -> Any:
    """``configured_app(max_body_bytes=..., cors_origins=..., **settings)``: hardening settings;
    top-level settings go in ``top``."""

    def factory(top: dict[str, Any] | None = None, **hardening: Any) -> FastAPI:
        update = dict(top or {})
        update["plugins"] = PluginsConfig(hardening=hardening)
        return build_app(mnemogate_settings.model_copy(update=update))

    return factory


def key_body(size: int) -> bytes:
    """A valid key request, padded with JSON whitespace to exactly ``size`` bytes."""
    body = json.dumps({"name": "padded", "scopes": ["read"]}).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


JSON = {"content-type": "application/json"}


# -- body limit ----------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413(configured_app: Any) -> None:
    async with running(configured_app(max_body_bytes=LIMIT)) as client:
        assert_too_large(await client.post("/api/v1/keys", content=key_body(LIMIT + 1), headers=JSON))
        assert_too_large(await client.post("/api/v1/keys", content=b"x" * 100_000, headers=JSON))
        # Refused before routing: an unknown path or a body-less route gives 413 as well.
        assert_too_large(await client.post("/nowhere", content=b"x" * (LIMIT + 1)))
        # Nothing was created.
        assert (await client.get("/api/v1/keys")).json()["items"] == []


async def test_a_body_at_the_limit_is_accepted(configured_app: Any) -> None:
    async with running(configured_app(max_body_bytes=LIMIT)) as client:
        response = await client.post("/api/v1/keys", content=key_body(LIMIT), headers=JSON)
        assert response.status_code == 201, response.text
        small = await client.post(
            "/api/v1/keys",
            json={"name": "small", "scopes": ["read"]},
            headers={"X-API-Key": response.json()["key"]},
        )
        assert_error(small, 403, "forbidden")  # reached the route: only the scope is missing


async def test_the_default_limit_is_5_mib(client: httpx.AsyncClient) -> None:
    big = key_body(5 * 1024 * 1024)
    assert (await client.post("/api/v1/keys", content=big, headers=JSON)).status_code == 201
    assert_too_large(await client.post("/api/v1/keys", content=big + b" ", headers=JSON), 5 * 1024 * 1024)


async def chunks(total: int, size: int = 250) -> AsyncIterator[bytes]:
    """A streamed body without Content-Length: JSON whitespace, then a valid key request."""
    head = json.dumps({"name": "streamed", "scopes": ["read"]}).encode()
    padding = total - len(head)
    while padding > 0:
        step = min(size, padding)
        yield b" " * step
        padding -= step
    yield head


async def test_a_chunked_body_growing_past_the_limit_is_413(configured_app: Any) -> None:
    app = configured_app(max_body_bytes=LIMIT)
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        request = client.build_request("POST", "/api/v1/keys", content=chunks(LIMIT * 5), headers=JSON)
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        response = await client.send(request)
        assert_too_large(response)
        # The server still serves, on a new connection (it may close one it stopped reading),
        # and created nothing.
        async with httpx.AsyncClient(base_url=base_url) as fresh:
            assert (await fresh.get("/api/v1/keys")).json()["items"] == []


async def test_a_chunked_body_under_the_limit_is_read(configured_app: Any) -> None:
    app = configured_app(max_body_bytes=LIMIT)
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        request = client.build_request("POST", "/api/v1/keys", content=chunks(LIMIT), headers=JSON)
        assert "content-length" not in request.headers
        response = await client.send(request)
        assert response.status_code == 201, response.text
        assert response.json()["name"] == "streamed"


async def test_a_content_length_over_the_limit_is_refused_over_the_network(configured_app: Any) -> None:
    app = configured_app(max_body_bytes=LIMIT)
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        assert_too_large(await client.post("/api/v1/keys", content=key_body(LIMIT + 1), headers=JSON))
        assert (await client.post("/api/v1/keys", content=key_body(LIMIT), headers=JSON)).status_code == 201


# -- request ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", ["abc-123", "trace.id:42_x", "A" * 128, "0"])
async def test_a_valid_request_id_is_echoed(client: httpx.AsyncClient, request_id: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    missing = await client.get("/nowhere", headers={"X-Request-ID": request_id})
    assert assert_error(missing, 404)["request_id"] == request_id


async def test_a_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = await client.get("/health")
    second = await client.get("/health")
    assert HEX_ID.fullmatch(first.headers["x-request-id"])
    assert HEX_ID.fullmatch(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "request_id",
    ["has spaces", "A" * 129, "x" * 200, "semi;colon", 'quote"d', "abc\n", "", "é"],
    ids=["spaces", "129-chars", "200-chars", "semicolon", "quote", "trailing-newline", "empty", "non-ascii"],
)
async def test_an_invalid_request_id_is_replaced(client: httpx.AsyncClient, request_id: str) -> None:
    headers = [("X-Request-ID", request_id.encode())]
    response = await client.get("/health", headers=headers)
    assert response.status_code == 200
    assert HEX_ID.fullmatch(response.headers["x-request-id"])
    missing = await client.get("/nowhere", headers=headers)
    error = assert_error(missing, 404)
    assert HEX_ID.fullmatch(error["request_id"])


async def test_every_error_carries_its_request_id(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/keys", json={"name": "k", "scopes": ["read"]})
    key = created.json()["key"]
    cases = [
        (await client.get("/api/v1/stats"), 401),
        (await client.get("/api/v1/stats", headers={"X-API-Key": "mg_wrong"}), 401),
        (await client.post("/api/v1/keys", json={}, headers={"X-API-Key": key}), 403),
        (await client.get("/nowhere", headers={"X-API-Key": key}), 404),
        (await client.delete("/health"), 405),
        (await client.get("/api/v1/routes", params={"cursor": "x"}, headers={"X-API-Key": key}), 400),
    ]
    for response, status in cases:
        assert_error(response, status)
        assert HEX_ID.fullmatch(response.headers["x-request-id"])
    chosen = await client.get("/api/v1/stats", headers={"X-Request-ID": "mine-1"})
    assert assert_error(chosen, 401)["request_id"] == "mine-1"


# -- security headers ----------------------------------------------------------------------------


async def test_security_headers_on_json_responses(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/api/v1/stats"), await client.get("/nowhere")):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, name
        assert response.headers["content-security-policy"] == JSON_CSP
        assert "strict-transport-security" not in response.headers  # plain HTTP


async def test_html_pages_get_no_json_csp(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "content-security-policy" not in docs.headers
    assert docs.headers["x-content-type-options"] == "nosniff"


async def test_metrics_text_gets_security_headers(client: httpx.AsyncClient) -> None:
    metrics = await client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert metrics.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in metrics.headers


async def test_hsts_over_https(make_app: Any) -> None:
    app = make_app()
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://mnemogate.test") as client:
            response = await client.get("/health")
    assert response.headers["strict-transport-security"] == "max-age=31536000"


async def test_hsts_can_be_switched_off(configured_app: Any) -> None:
    app = configured_app(hsts_seconds=0)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://mnemogate.test") as client:
            response = await client.get("/health")
    assert "strict-transport-security" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"


async def test_security_headers_can_be_switched_off(configured_app: Any) -> None:
    async with running(configured_app(security_headers=False)) as client:
        response = await client.get("/api/v1/stats")
    assert response.status_code == 200
    assert not {*SECURITY_HEADERS, "content-security-policy"} & set(response.headers)
    assert HEX_ID.fullmatch(response.headers["x-request-id"])


# -- CORS ----------------------------------------------------------------------------------------


def preflight(origin: str, method: str = "GET", headers: str | None = None) -> dict[str, str]:
    values = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        values["Access-Control-Request-Headers"] = headers
    return values


async def test_cors_preflight_from_an_allowed_origin(configured_app: Any) -> None:
    async with running(configured_app(cors_origins=[ORIGIN])) as client:
        response = await client.options(
            "/api/v1/stats", headers=preflight(ORIGIN, "POST", "Authorization, X-API-Key")
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in response.headers["access-control-allow-methods"]
        allowed = response.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "x-api-key" in allowed
        assert HEX_ID.fullmatch(response.headers["x-request-id"])


async def test_cors_preflight_needs_no_key(configured_app: Any) -> None:
    async with running(configured_app(cors_origins=[ORIGIN])) as client:
        assert (await client.post("/api/v1/keys", json={"name": "k", "scopes": ["read"]})).status_code == 201
        response = await client.options("/api/v1/stats", headers=preflight(ORIGIN))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.parametrize(
    "request_headers",
    [
        preflight("https://evil.example"),
        preflight(ORIGIN, "TRACE"),
        preflight(ORIGIN, "GET", "X-Secret-Header"),
    ],
    ids=["origin", "method", "header"],
)
async def test_a_refused_cors_preflight_is_an_error_envelope(
    configured_app: Any, request_headers: dict[str, str]
) -> None:
    async with running(configured_app(cors_origins=[ORIGIN])) as client:
        response = await client.options("/api/v1/stats", headers=request_headers)
    error = assert_error(response, 400, "cors_rejected")
    assert error["type"] == "invalid_request_error"
    assert "CORS" in error["message"]
    assert "origin" in response.headers["vary"].lower()
    if request_headers["Origin"] != ORIGIN:
        assert "access-control-allow-origin" not in response.headers


async def test_cors_on_simple_requests(configured_app: Any) -> None:
    async with running(configured_app(cors_origins=[ORIGIN])) as client:
        allowed = await client.get("/api/v1/stats", headers={"Origin": ORIGIN})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        exposed = allowed.headers["access-control-expose-headers"].lower()
        for name in ("x-request-id", "retry-after", "x-ratelimit-limit", "x-ratelimit-remaining"):
            assert name in exposed
        other = await client.get("/api/v1/stats", headers={"Origin": "https://evil.example"})
        assert other.status_code == 200  # the browser, not the server, withholds it
        assert "access-control-allow-origin" not in other.headers
        # Errors carry CORS headers too, so browsers can read the envelope.
        missing = await client.get("/nowhere", headers={"Origin": ORIGIN})
        assert_error(missing, 404)
        assert missing.headers["access-control-allow-origin"] == ORIGIN


async def test_cors_origins_from_a_comma_separated_string(configured_app: Any) -> None:
    async with running(configured_app(cors_origins=f"{ORIGIN}, https://two.example")) as client:
        for origin in (ORIGIN, "https://two.example"):
            response = await client.options("/api/v1/stats", headers=preflight(origin))
            assert response.headers["access-control-allow-origin"] == origin


async def test_without_origins_there_is_no_cors(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/stats", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert not [h for h in response.headers if h.startswith("access-control-")]
    refused = await client.options("/api/v1/stats", headers=preflight(ORIGIN))
    assert_error(refused, 405)
    assert not [h for h in refused.headers if h.startswith("access-control-")]


# -- access log ----------------------------------------------------------------------------------


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "mnemogate.access"]


async def test_one_access_log_record_per_request(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mnemogate.access")
    caplog.clear()
    ok = await client.get("/api/v1/stats", headers={"X-Request-ID": "req-1"})
    missing = await client.get("/nowhere")
    created = await client.post("/api/v1/keys", json={"name": "k", "scopes": ["read"]})
    key = created.json()["key"]
    denied = await client.get("/api/v1/stats")
    keyed = await client.get("/api/v1/stats", headers={"X-API-Key": key})

    records = access_records(caplog)
    assert len(records) == 5
    expected = [
        ("GET", "/api/v1/stats", 200, ok),
        ("GET", "/nowhere", 404, missing),
        ("POST", "/api/v1/keys", 201, created),
        ("GET", "/api/v1/stats", 401, denied),
        ("GET", "/api/v1/stats", 200, keyed),
    ]
    for record, (method, path, status, response) in zip(records, expected, strict=True):
        assert record.getMessage() == "request"
        assert record.method == method
        assert record.path == path
        assert record.status == status
        assert record.request_id == response.headers["x-request-id"]
        assert isinstance(record.duration_ms, float) and record.duration_ms >= 0
        assert record.bytes == len(response.content)
        assert record.client == "127.0.0.1"
    assert records[0].request_id == "req-1"
    assert records[0].tenant == "default" and records[0].key_id is None
    assert records[3].tenant == "default" and records[3].key_id is None  # anonymous
    assert records[4].key_id == created.json()["id"]


async def test_the_access_log_is_one_json_line_without_secrets(
    make_app: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(log_format="json")
    async with running(app) as client:
        created = await client.post("/api/v1/keys", json={"name": "k", "scopes": ["read"]})
        key = created.json()["key"]
        capsys.readouterr()
        caplog.clear()
        response = await client.get(
            "/api/v1/stats",
            params={"api_key": key, "password": "hunter2", "q": "needle"},
            headers={"X-API-Key": key, "X-Request-ID": "json-line"},
        )
        assert response.status_code == 200
        invalid = await client.get(
            "/api/v1/stats", headers={"Authorization": "Bearer mg_guessed_key_000000000000"}
        )
        assert_error(invalid, 401)
    # Log lines are written in batches (flushed at shutdown at the latest), so select by path.
    lines = [
        line
        for line in capsys.readouterr().err.splitlines()
        if '"mnemogate.access"' in line and '"path":"/api/v1/stats"' in line
    ]
    assert len(lines) == 2
    entry = json.loads(lines[0])
    assert entry["logger"] == "mnemogate.access"
    assert entry["method"] == "GET"
    assert entry["path"] == "/api/v1/stats"
    assert entry["status"] == 200
    assert entry["request_id"] == "json-line"
    assert entry["duration_ms"] >= 0
    assert entry["key_id"] == created.json()["id"]
    assert json.loads(lines[1])["status"] == 401
    for text in [*lines, *(r.getMessage() + str(r.__dict__) for r in access_records(caplog))]:
        for secret in (key, key[10:], "hunter2", "needle", "api_key=", "mg_guessed_key"):
            assert secret not in text


async def test_the_access_log_can_be_switched_off(
    configured_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mnemogate.access")
    async with running(configured_app(access_log=False)) as client:
        assert (await client.get("/api/v1/stats")).status_code == 200
    assert access_records(caplog) == []


async def test_the_access_log_over_a_real_server(
    configured_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mnemogate.access")
    app = configured_app()
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        caplog.clear()
        response = await client.get("/api/v1/health/live?secret=1")
    records = access_records(caplog)
    assert [(r.method, r.path, r.status) for r in records] == [("GET", "/api/v1/health/live", 200)]
    assert records[0].request_id == response.headers["x-request-id"]
    assert records[0].client == "127.0.0.1"


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "detail"),
    [
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"hsts_seconds": -1}, "hsts_seconds"),
        ({"security_headers": "sometimes"}, "security_headers"),
        ({"max_body": 10}, "max_body"),
    ],
)
def test_invalid_settings_stop_the_app(configured_app: Any, settings: dict[str, Any], detail: str) -> None:
    with pytest.raises(StartupError) as failure:
        configured_app(**settings)
    assert str(failure.value).startswith("plugin 'hardening':")
    assert detail in str(failure.value)
