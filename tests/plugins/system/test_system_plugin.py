"""The system plugin: health probes, readiness, statistics and the plugin and route inventories."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from mnemogate.core import __version__
from mnemogate.core.db import Database
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.plugins import BUILTIN_PLUGINS, builtin_name
from mnemogate.core.testing import running

BUILTINS = [builtin_name(module) for module in BUILTIN_PLUGINS]
UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:1/none"


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an error in the envelope, carrying the response's request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert {"code", "message", "type", "request_id"} <= set(error)
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert error["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert error["code"] == code
    return error


def cursor_of(values: list[Any]) -> str:
    """A syntactically valid cursor (URL-safe base64 of a JSON list) holding ``values``."""
    return base64.urlsafe_b64encode(repr(values).encode()).decode().rstrip("=")


async def all_pages(client: httpx.AsyncClient, path: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], "a page with a next cursor is never empty"
    raise AssertionError("pagination did not end")


def route_key(route: dict[str, Any]) -> tuple[str, str]:
    return route["method"], route["path"]


# -- probes --------------------------------------------------------------------------------------


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_health_with_checks_reports_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["uptime_seconds"] >= 0
    assert body["checks"] == {"database": {"ok": True, "detail": "sqlite"}}


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    live = await client.get("/api/v1/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    ready = await client.get("/api/v1/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_readiness_fails_with_503_while_the_database_does_not_answer(make_app: Any) -> None:
    app = make_app()
    async with running(app) as client:
        registry = app.state.registry
        working = registry.db
        unreachable = Database(UNREACHABLE_DATABASE)
        registry.db = unreachable
        try:
            ready = await client.get("/api/v1/health/ready")
            error = assert_error(ready, 503, "unavailable")
            assert error["type"] == "server_error"
            assert "database" in error["message"]
            assert "127.0.0.1" not in ready.text  # addresses never reach a client

            health = await client.get("/api/v1/health")
            assert health.status_code == 200
            body = health.json()
            assert body["status"] == "degraded"
            assert body["checks"]["database"]["ok"] is False

            # Liveness does not depend on the database.
            assert (await client.get("/api/v1/health/live")).status_code == 200
            assert (await client.get("/health")).status_code == 200
        finally:
            registry.db = working
            await unreachable.close()
        assert (await client.get("/api/v1/health/ready")).status_code == 200
        assert (await client.get("/api/v1/health")).json()["checks"]["database"]["ok"] is True


async def test_probes_stay_public_once_api_keys_exist(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/keys", json={"name": "k", "scopes": ["read"]})
    assert created.status_code == 201
    for path in ("/health", "/api/v1/health", "/api/v1/health/live", "/api/v1/health/ready"):
        assert (await client.get(path)).status_code == 200, path
    for path in ("/api/v1/stats", "/api/v1/plugins", "/api/v1/routes"):
        denied = await client.get(path)
        assert_error(denied, 401, "unauthorized")
        allowed = await client.get(path, headers={"Authorization": f"Bearer {created.json()['key']}"})
        assert allowed.status_code == 200, path


# -- stats ---------------------------------------------------------------------------------------


async def test_stats(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/stats")
    assert response.status_code == 200
    stats = response.json()
    assert stats["version"] == __version__
    assert stats["uptime_seconds"] >= 0
    assert stats["plugins_enabled"] == len(BUILTINS)
    assert stats["plugins_disabled"] == 0
    assert stats["websocket_clients"] == 0
    assert stats["database_dialect"] == "sqlite"
    assert stats["database_bytes"] > 0
    every_route = (await client.get("/api/v1/routes", params={"limit": 500})).json()["items"]
    assert stats["routes"] == len(every_route)


@pytest.mark.postgres
async def test_stats_and_health_on_postgresql(make_client: Any, postgres_url: str) -> None:
    async with make_client(database_url=postgres_url) as client:
        stats = (await client.get("/api/v1/stats")).json()
        assert stats["database_dialect"] == "postgresql"
        assert stats["database_bytes"] > 0
        health = (await client.get("/api/v1/health")).json()
        assert health["checks"]["database"] == {"ok": True, "detail": "postgresql"}
        assert (await client.get("/api/v1/health/ready")).status_code == 200


async def test_make_client_accepts_a_database_url_string(make_client: Any, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    async with make_client(database_url=url) as client:
        assert (await client.get("/api/v1/health/ready")).status_code == 200
    assert (tmp_path / "elsewhere.db").exists()


# -- plugins -------------------------------------------------------------------------------------


async def test_plugins_lists_the_builtins(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/plugins")
    assert response.status_code == 200
    page = response.json()
    assert page["next_cursor"] is None
    plugins = {p["name"]: p for p in page["items"]}
    assert [p["name"] for p in page["items"]] == BUILTINS
    for name in BUILTINS:
        info = plugins[name]
        assert info["builtin"] is True
        assert info["enabled"] is True
        assert info["version"] == __version__
        assert info["source"] == f"mnemogate.plugins.{name}"
        assert info["hooks"] == sorted(info["hooks"]) and info["hooks"]
    assert "register_routes" in plugins["system"]["hooks"]
    assert "requires_api_keys" in plugins["auth"]["hooks"]
    assert "register_ratelimit_stores" in plugins["ratelimit"]["hooks"]


async def test_plugins_pagination(client: httpx.AsyncClient) -> None:
    first = (await client.get("/api/v1/plugins", params={"limit": 2})).json()
    assert [p["name"] for p in first["items"]] == BUILTINS[:2]
    assert first["next_cursor"]
    paged = await all_pages(client, "/api/v1/plugins", 2)
    assert [p["name"] for p in paged] == BUILTINS


async def test_a_disabled_plugin_is_listed_and_its_routes_are_gone(make_client: Any) -> None:
    async with make_client(disabled=["ratelimit"]) as client:
        plugins = {p["name"]: p for p in (await client.get("/api/v1/plugins")).json()["items"]}
        assert plugins["ratelimit"]["enabled"] is False
        assert plugins["ratelimit"]["hooks"] == []
        assert all(plugins[name]["enabled"] for name in BUILTINS if name != "ratelimit")

        routes = await all_pages(client, "/api/v1/routes", 100)
        assert not [r for r in routes if r["plugin"] == "ratelimit"]
        assert ("GET", "/api/rate-limit") not in {route_key(r) for r in routes}
        assert_error(await client.get("/api/rate-limit"), 404, "not_found")

        stats = (await client.get("/api/v1/stats")).json()
        assert stats["plugins_enabled"] == len(BUILTINS) - 1
        assert stats["plugins_disabled"] == 1
        # Nothing of the plugin is left: no rate-limit headers either.
        assert "x-ratelimit-limit" not in (await client.get("/api/v1/stats")).headers


# -- routes --------------------------------------------------------------------------------------


async def test_route_inventory_names_each_plugins_routes_and_scopes(client: httpx.AsyncClient) -> None:
    routes = (await client.get("/api/v1/routes", params={"limit": 500})).json()["items"]
    inventory = {route_key(r): r for r in routes}
    expected = {
        ("GET", "/health"): ("system", None),
        ("GET", "/api/v1/health"): ("system", None),
        ("GET", "/api/v1/health/live"): ("system", None),
        ("GET", "/api/v1/health/ready"): ("system", None),
        ("GET", "/api/v1/stats"): ("system", "read"),
        ("GET", "/api/v1/plugins"): ("system", "read"),
        ("GET", "/api/v1/routes"): ("system", "read"),
        ("POST", "/api/v1/keys"): ("auth", "admin"),
        ("GET", "/api/v1/keys"): ("auth", "admin"),
        ("DELETE", "/api/v1/keys/{key_id}"): ("auth", "admin"),
        ("GET", "/api/rate-limit"): ("ratelimit", "read"),
        ("GET", "/metrics"): ("observability", "read"),
        ("GET", "/openapi.json"): ("core", None),
        ("GET", "/docs"): ("core", None),
    }
    for key, (plugin, scope) in expected.items():
        assert key in inventory, key
        assert inventory[key]["plugin"] == plugin, key
        assert inventory[key]["scope"] == scope, key
        assert inventory[key]["kind"] == "http"
    assert not any(r["duplicate"] for r in routes)
    assert len(inventory) == len(routes), "each method and path appears once"
    assert routes == sorted(routes, key=lambda r: (r["path"], r["method"]))


async def test_route_pagination_covers_the_full_list_once(client: httpx.AsyncClient) -> None:
    full = (await client.get("/api/v1/routes", params={"limit": 500})).json()
    assert full["next_cursor"] is None
    first = (await client.get("/api/v1/routes", params={"limit": 2})).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    paged = await all_pages(client, "/api/v1/routes", 2)
    keys = [route_key(r) for r in paged]
    assert len(keys) == len(set(keys)), "no route appears on two pages"
    assert paged == full["items"]


@pytest.mark.parametrize("path", ["/api/v1/routes", "/api/v1/plugins"])
@pytest.mark.parametrize(
    "cursor",
    [
        "zzz",  # not base64 of JSON
        "!!!",
        cursor_of([1, 2]),  # wrong length
        cursor_of([-2]),  # negative offset
        base64.urlsafe_b64encode(b'["2"]').decode().rstrip("="),  # not an integer
        base64.urlsafe_b64encode(b'{"a": 1}').decode().rstrip("="),  # not a list
    ],
)
async def test_a_bad_cursor_is_a_400(client: httpx.AsyncClient, path: str, cursor: str) -> None:
    response = await client.get(path, params={"limit": 2, "cursor": cursor})
    error = assert_error(response, 400, "invalid_cursor")
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("limit", ["0", "501", "-1", "many"])
async def test_a_bad_page_size_is_a_422(client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get("/api/v1/routes", params={"limit": limit})
    error = assert_error(response, 422, "validation_error")
    assert error["details"][0]["loc"] == ["query", "limit"]


class ExtraRoutes:
    """A plugin registered in code, contributing a public and an admin route."""

    plugin_name = "extra"

    def __init__(self) -> None:
        self.public = APIRouter()
        self.admin = APIRouter()

        @self.public.get("/extra/ping")
        async def ping() -> dict[str, str]:
            return {"pong": "yes"}

        @self.admin.post("/extra/things/{thing_id}")
        async def things(thing_id: uuid.UUID) -> dict[str, str]:
            return {"id": str(thing_id)}

    @hookimpl
    def register_routes(self, register: Any) -> None:
        register(self.public, scope=None)
        register(self.admin, prefix="/api/v1", scope="admin")


async def test_inventory_includes_a_plugin_registered_in_code(make_client: Any) -> None:
    async with make_client(plugins=[ExtraRoutes()]) as client:
        inventory = {route_key(r): r for r in await all_pages(client, "/api/v1/routes", 3)}
        assert inventory[("GET", "/extra/ping")]["plugin"] == "extra"
        assert inventory[("GET", "/extra/ping")]["scope"] is None
        assert inventory[("POST", "/api/v1/extra/things/{thing_id}")]["scope"] == "admin"
        plugins = {p["name"]: p for p in (await client.get("/api/v1/plugins")).json()["items"]}
        assert plugins["extra"]["builtin"] is False
        assert plugins["extra"]["enabled"] is True
        assert plugins["extra"]["hooks"] == ["register_routes"]
        assert (await client.get("/extra/ping")).json() == {"pong": "yes"}
