"""The rate-limit plugin: token buckets per API key (or client address while open), headers,
exemptions, per-scope limits, the bucket route and third-party bucket stores."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mnemogate.core.contracts import RateLimitDecision
from mnemogate.core.errors import StartupError
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import TEST_BASE_URL, build_app, running

LIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


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


def assert_limited(response: httpx.Response, limit: int, per_minute: int | None = None) -> dict[str, Any]:
    error = assert_error(response, 429, "rate_limit_exceeded")
    assert error["type"] == "rate_limit_error"
    assert str(limit) in error["message"]
    headers = response.headers
    assert headers["x-ratelimit-limit"] == str(limit)
    assert headers["x-ratelimit-remaining"] == "0"
    retry_after = int(headers["retry-after"])
    # At most the time one token takes to come back (60 s / requests per minute), at least 1 s;
    # the bucket is full again at most ``limit`` tokens later.
    token_seconds = 60 / (per_minute or limit)
    assert 1 <= retry_after <= math.ceil(token_seconds)
    assert 1 <= int(headers["x-ratelimit-reset"]) <= math.ceil(limit * token_seconds)
    assert f"retry in {retry_after} s" in error["message"]
    return error


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def client_from(app: FastAPI, address: tuple[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that is already running, connecting from ``address``."""
    transport = httpx.ASGITransport(app=app, client=address)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as client:
        yield client


@pytest.fixture
def configured_app(mnemogate_settings: Settings) -> Any:
    """``configured_app({"ratelimit": {...}}, plugins=[...], **overrides)``."""

    def factory(
        config: dict[str, Any] | None = None, *, plugins: Any = (), disabled: Any = (), **overrides: Any
    ) -> FastAPI:
        update = dict(overrides)
        if config is not None:
            update["plugins"] = PluginsConfig(**config)
        return build_app(mnemogate_settings.model_copy(update=update), plugins=plugins, disabled=disabled)

    return factory


def limited(configured_app: Any, **ratelimit: Any) -> FastAPI:
    return configured_app({"ratelimit": ratelimit})


async def create_key(
    client: httpx.AsyncClient, scope: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await client.post("/api/v1/keys", json={"name": scope, "scopes": [scope]}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


# -- the limit -----------------------------------------------------------------------------------


async def test_the_request_over_the_limit_gets_429(configured_app: Any) -> None:
    async with running(limited(configured_app, requests_per_minute=3)) as client:
        for remaining in (2, 1, 0):
            response = await client.get("/api/v1/stats")
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "3"
            assert response.headers["x-ratelimit-remaining"] == str(remaining)
            assert 1 <= int(response.headers["x-ratelimit-reset"]) <= 60
            assert "retry-after" not in response.headers
        assert_limited(await client.get("/api/v1/stats"), 3)
        # Every route of the bucket is refused now, whatever it is.
        assert_limited(await client.get("/api/v1/routes"), 3)
        assert_limited(await client.get("/does-not-exist"), 3)
        assert_limited(await client.post("/api/v1/keys", json={"name": "x", "scopes": ["read"]}), 3)


async def test_the_default_limit_is_100_per_minute(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/stats")
    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit"] == "100"
    assert int(response.headers["x-ratelimit-remaining"]) == 99
    assert int(response.headers["x-ratelimit-reset"]) == 1  # one token: 0.6 s, rounded up


async def test_successful_responses_carry_the_headers(configured_app: Any) -> None:
    async with running(limited(configured_app, requests_per_minute=6)) as client:
        response = await client.get("/api/v1/stats")
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "6"
        assert response.headers["x-ratelimit-remaining"] == "5"
        assert 1 <= int(response.headers["x-ratelimit-reset"]) <= 10
        # Errors from the app (not from the limiter) carry them too.
        missing = await client.get("/nope")
        assert_error(missing, 404)
        assert missing.headers["x-ratelimit-remaining"] == "4"
        invalid = await client.post("/api/v1/keys", json={})
        assert_error(invalid, 422)
        assert invalid.headers["x-ratelimit-remaining"] == "3"


async def test_a_refused_request_is_not_served(configured_app: Any) -> None:
    async with running(limited(configured_app, requests_per_minute=1)) as client:
        assert (await client.get("/api/v1/stats")).status_code == 200
        assert_limited(await client.post("/api/v1/keys", json={"name": "x", "scopes": ["read"]}), 1)
        # The refused POST created no key: the server is still open.
    async with running(limited(configured_app, requests_per_minute=1)) as client:
        listing = await client.get("/api/v1/keys")
        assert listing.status_code == 200
        assert listing.json()["items"] == []


async def test_burst_sets_the_bucket_size(configured_app: Any) -> None:
    async with running(limited(configured_app, requests_per_minute=1, burst=4)) as client:
        for remaining in (3, 2, 1, 0):
            response = await client.get("/api/v1/stats")
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "4"
            assert response.headers["x-ratelimit-remaining"] == str(remaining)
        assert_limited(await client.get("/api/v1/stats"), 4, per_minute=1)


# -- exemptions ----------------------------------------------------------------------------------


async def test_exempt_paths_are_never_limited(configured_app: Any) -> None:
    async with running(limited(configured_app, requests_per_minute=1)) as client:
        for _ in range(5):
            for path in ("/health", "/api/v1/health/live", "/api/v1/health/ready", "/metrics"):
                response = await client.get(path)
                assert response.status_code == 200, path
                assert not any(h in response.headers for h in LIMIT_HEADERS), path
        # They did not use the bucket either.
        response = await client.get("/api/v1/stats")
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == "0"
        assert_limited(await client.get("/api/v1/stats"), 1)
        assert (await client.get("/health")).status_code == 200


async def test_exempt_paths_are_configurable(configured_app: Any) -> None:
    async with running(
        limited(configured_app, requests_per_minute=1, exempt_paths=["/api/v1/stats"])
    ) as client:
        for _ in range(3):
            assert (await client.get("/api/v1/stats")).status_code == 200
        assert (await client.get("/health")).status_code == 200  # no longer exempt: uses the token
        assert_limited(await client.get("/health"), 1)


async def test_exempt_paths_from_a_comma_separated_string(configured_app: Any) -> None:
    app = limited(configured_app, requests_per_minute=1, exempt_paths="/api/v1/stats, /api/v1/plugins")
    async with running(app) as client:
        for _ in range(3):
            assert (await client.get("/api/v1/stats")).status_code == 200
            assert (await client.get("/api/v1/plugins")).status_code == 200


# -- buckets -------------------------------------------------------------------------------------


async def test_each_key_has_its_own_bucket(configured_app: Any) -> None:
    async with running(limited(configured_app, requests_per_minute=2)) as client:
        first = await create_key(client, "admin")  # open: counted against 127.0.0.1
        second = await create_key(client, "read", headers=bearer(first["key"]))  # first key: 1 left
        assert (await client.get("/api/v1/stats", headers=bearer(first["key"]))).status_code == 200
        assert_limited(await client.get("/api/v1/stats", headers=bearer(first["key"])), 2)

        for remaining in (1, 0):
            response = await client.get("/api/v1/stats", headers=bearer(second["key"]))
            assert response.status_code == 200
            assert response.headers["x-ratelimit-remaining"] == str(remaining)
        assert_limited(await client.get("/api/v1/stats", headers={"X-API-Key": second["key"]}), 2)


async def test_a_key_has_the_same_bucket_from_every_address(configured_app: Any) -> None:
    app = limited(configured_app, requests_per_minute=2)
    async with running(app) as local, client_from(app, ("10.9.8.7", 4000)) as remote:
        key = await create_key(local, "read")
        assert (await local.get("/api/v1/stats", headers=bearer(key["key"]))).status_code == 200
        assert (await remote.get("/api/v1/stats", headers=bearer(key["key"]))).status_code == 200
        assert_limited(await local.get("/api/v1/stats", headers=bearer(key["key"])), 2)
        assert_limited(await remote.get("/api/v1/stats", headers=bearer(key["key"])), 2)


async def test_while_open_each_client_address_has_its_own_bucket(configured_app: Any) -> None:
    app = configured_app({"ratelimit": {"requests_per_minute": 2}}, allow_open=True)
    async with (
        running(app) as first,
        client_from(app, ("127.0.0.2", 1000)) as second,
        client_from(app, ("10.1.2.3", 1234)) as remote,
    ):
        for client in (first, second, remote):
            assert (await client.get("/api/v1/stats")).status_code == 200
            assert (await client.get("/api/v1/stats")).status_code == 200
            assert_limited(await client.get("/api/v1/stats"), 2)
        # Another port of the same address is the same caller.
        async with client_from(app, ("10.1.2.3", 5678)) as same_address:
            assert_limited(await same_address.get("/api/v1/stats"), 2)


async def test_per_scope_limits(configured_app: Any) -> None:
    app = limited(configured_app, requests_per_minute=2, per_scope={"admin": 5})
    async with running(app) as client:
        admin = await create_key(client, "admin")
        reader = await create_key(client, "read", headers=bearer(admin["key"]))  # admin: 4 left
        for remaining in (3, 2, 1, 0):
            response = await client.get("/api/v1/stats", headers=bearer(admin["key"]))
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "5"
            assert response.headers["x-ratelimit-remaining"] == str(remaining)
        assert_limited(await client.get("/api/v1/stats", headers=bearer(admin["key"])), 5)

        for _ in range(2):
            response = await client.get("/api/v1/stats", headers=bearer(reader["key"]))
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "2"
        assert_limited(await client.get("/api/v1/stats", headers=bearer(reader["key"])), 2)


async def test_a_key_with_several_scopes_gets_its_highest_scopes_limit(configured_app: Any) -> None:
    app = limited(configured_app, requests_per_minute=2, per_scope={"read": 3, "write": 4})
    async with running(app) as client:
        response = await client.post("/api/v1/keys", json={"name": "rw", "scopes": ["read", "write"]})
        key = response.json()["key"]
        response = await client.get("/api/v1/stats", headers=bearer(key))
        assert response.headers["x-ratelimit-limit"] == "4"


# -- the bucket route ----------------------------------------------------------------------------


async def test_rate_limit_route_shows_the_open_callers_bucket(configured_app: Any) -> None:
    async with running(limited(configured_app, requests_per_minute=10)) as client:
        await client.get("/api/v1/stats")
        response = await client.get("/api/rate-limit")
        assert response.status_code == 200
        bucket = response.json()
        assert bucket["bucket"] == "addr:127.0.0.1"
        assert bucket["limit"] == 10
        assert bucket["remaining"] == 8  # this request counts too
        assert bucket["requests_per_minute"] == 10
        assert bucket["store"] == "memory"
        assert 0 < bucket["reset_seconds"] <= 60
        assert response.headers["x-ratelimit-remaining"] == "8"


async def test_rate_limit_route_shows_a_keys_bucket(configured_app: Any) -> None:
    app = limited(configured_app, requests_per_minute=6, per_scope={"admin": 12})
    async with running(app) as client:
        admin = await create_key(client, "admin")
        reader = await create_key(client, "read", headers=bearer(admin["key"]))
        bucket = (await client.get("/api/rate-limit", headers=bearer(reader["key"]))).json()
        assert bucket["bucket"] == f"key:{reader['id']}"
        assert (bucket["limit"], bucket["remaining"], bucket["requests_per_minute"]) == (6, 5, 6)
        bucket = (await client.get("/api/rate-limit", headers=bearer(admin["key"]))).json()
        assert bucket["bucket"] == f"key:{admin['id']}"
        assert (bucket["limit"], bucket["remaining"], bucket["requests_per_minute"]) == (12, 10, 12)
        # The route needs a key now, like every read route.
        assert_error(await client.get("/api/rate-limit"), 401, "unauthorized")


async def test_rate_limit_route_is_exempt_when_configured_and_then_peeks(configured_app: Any) -> None:
    app = limited(configured_app, requests_per_minute=5, exempt_paths=["/api/rate-limit"])
    async with running(app) as client:
        await client.get("/api/v1/stats")
        for _ in range(3):
            bucket = (await client.get("/api/rate-limit")).json()
            assert bucket["remaining"] == 4  # looked at, not counted
        assert (await client.get("/api/v1/stats")).headers["x-ratelimit-remaining"] == "3"


# -- third-party stores --------------------------------------------------------------------------


class CountingStore:
    """A bucket store of its own making: allows ``allow`` requests per bucket, counts calls."""

    def __init__(self, allow: int) -> None:
        self.allow = allow
        self.taken: dict[str, int] = {}
        self.peeks = 0

    async def take(self, key: str, capacity: int, refill_per_second: float) -> RateLimitDecision:
        count = self.taken[key] = self.taken.get(key, 0) + 1
        allowed = count <= self.allow
        return RateLimitDecision(
            allowed, self.allow, max(0, self.allow - count), 42.0, 0.0 if allowed else 7.0
        )

    async def peek(self, key: str, capacity: int, refill_per_second: float) -> RateLimitDecision:
        self.peeks += 1
        used = self.taken.get(key, 0)
        return RateLimitDecision(used < self.allow, self.allow, max(0, self.allow - used), 42.0, 0.0)


class CountingStorePlugin:
    plugin_name = "counting-store"

    def __init__(self, allow: int = 3, name: str = "counting") -> None:
        self.name = name
        self.store = CountingStore(allow)
        self.settings: list[Any] = []

    @hookimpl
    def register_ratelimit_stores(self, register: Any) -> None:
        def factory(settings: Settings) -> CountingStore:
            self.settings.append(settings)
            return self.store

        register(self.name, factory)


async def test_a_store_from_another_plugin_is_used(configured_app: Any) -> None:
    plugin = CountingStorePlugin(allow=3)
    app = configured_app({"ratelimit": {"store": "counting"}}, plugins=[plugin])
    async with running(app) as client:
        assert len(plugin.settings) == 1
        assert plugin.settings[0].data_dir == app.state.registry.settings.data_dir
        response = await client.get("/api/v1/stats")
        assert response.headers["x-ratelimit-limit"] == "3"
        assert response.headers["x-ratelimit-remaining"] == "2"
        assert response.headers["x-ratelimit-reset"] == "42"
        bucket = (await client.get("/api/rate-limit")).json()
        assert bucket["store"] == "counting"
        assert bucket["remaining"] == 1
        await client.get("/health")  # exempt: never reaches the store
        await client.get("/api/v1/plugins")
        refused = await client.get("/api/v1/stats")
        assert_error(refused, 429, "rate_limit_exceeded")
        assert refused.headers["retry-after"] == "7"
        assert_error(await client.get("/api/v1/plugins"), 429, "rate_limit_exceeded")
        assert plugin.store.taken == {"addr:127.0.0.1": 5}
        assert plugin.store.peeks == 0, "the bucket route reports the request's own decision"


async def test_the_memory_store_stays_the_default_with_another_installed(configured_app: Any) -> None:
    plugin = CountingStorePlugin()
    async with running(configured_app(plugins=[plugin])) as client:
        assert (await client.get("/api/rate-limit")).json()["store"] == "memory"
        assert (await client.get("/api/v1/stats")).headers["x-ratelimit-limit"] == "100"
        plugins = {p["name"]: p for p in (await client.get("/api/v1/plugins")).json()["items"]}
        assert plugins["counting-store"]["hooks"] == ["register_ratelimit_stores"]
    assert plugin.store.taken == {}
    assert plugin.settings == [], "a store that is not selected is never built"


async def test_an_unknown_store_stops_start_up(configured_app: Any) -> None:
    app = configured_app({"ratelimit": {"store": "nope"}}, plugins=[CountingStorePlugin()])
    with pytest.raises(StartupError) as failure:
        async with running(app):
            pass
    message = str(failure.value)
    assert "plugin 'ratelimit'" in message
    assert "'nope'" in message
    assert "counting, memory" in message
    assert app.state.registry.startup_error == message


async def test_a_store_name_claimed_twice_stops_start_up(configured_app: Any) -> None:
    app = configured_app(plugins=[CountingStorePlugin(name="memory")])
    with pytest.raises(StartupError, match="'memory'") as failure:
        async with running(app):
            pass
    assert "'ratelimit'" in str(failure.value)
    assert "'counting-store'" in str(failure.value)


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "detail"),
    [
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"requests_per_minute": "lots"}, "requests_per_minute"),
        ({"burst": 0}, "burst"),
        ({"per_scope": {"bogus": 1}}, "bogus"),
        ({"per_scope": {"admin": 0}}, "per_scope"),
        ({"requests_per_mintue": 5}, "requests_per_mintue"),
    ],
)
def test_invalid_settings_stop_the_app(configured_app: Any, settings: dict[str, Any], detail: str) -> None:
    with pytest.raises(StartupError) as failure:
        configured_app({"ratelimit": settings})
    message = str(failure.value)
    assert message.startswith("plugin 'ratelimit':")
    assert detail in message


def test_settings_of_a_disabled_plugin_are_not_checked(configured_app: Any) -> None:
    configured_app({"ratelimit": {"requests_per_minute": 0}}, disabled=["ratelimit"])
