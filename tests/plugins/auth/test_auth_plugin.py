"""The auth plugin: API keys (shown once, stored hashed), scopes, tenants, the exposure rule and
the ``mnemogate keys`` commands."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text

from mnemogate.core.cli import build_cli
from mnemogate.core.errors import StartupError
from mnemogate.core.plugins import PluginHost
from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import TEST_BASE_URL, build_app, running

REMOTE = ("10.1.2.3", 1234)
KEY_FIELDS = {"id", "name", "tenant", "scopes", "prefix", "created_at", "revoked_at"}


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


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    error = assert_error(response, 401, "unauthorized")
    assert error["type"] == "authentication_error"
    assert response.headers["www-authenticate"] == "Bearer"
    return error


def assert_forbidden(response: httpx.Response) -> dict[str, Any]:
    error = assert_error(response, 403, "forbidden")
    assert error["type"] == "permission_error"
    return error


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def client_from(app: FastAPI, address: tuple[str, int] = REMOTE) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that is already running, connecting from ``address``."""
    transport = httpx.ASGITransport(app=app, client=address)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as client:
        yield client


async def create_key(
    client: httpx.AsyncClient,
    *scopes: str,
    headers: dict[str, str] | None = None,
    name: str = "test",
    **fields: Any,
) -> dict[str, Any]:
    """Create a key over HTTP (as the open loopback client unless ``headers`` carry a key)."""
    body = {"name": name, "scopes": list(scopes or ("read",)), **fields}
    response = await client.post("/api/v1/keys", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def run_cli(settings: Settings, *args: str) -> Result:
    """``mnemogate <args>`` against the database of ``settings``."""
    cli = build_cli(settings, PluginHost.build(load_plugins=[]))
    return CliRunner().invoke(cli, list(args))


async def cli(settings: Settings, *args: str) -> Result:
    # The commands run their own event loop (asyncio.run), so they go to a thread here.
    return await asyncio.to_thread(run_cli, settings, *args)


async def cli_key(settings: Settings, scope: str, tenant: str) -> dict[str, Any]:
    result = await cli(settings, "keys", "create", "--scope", scope, "--tenant", tenant)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def configured_app(mnemogate_settings: Settings) -> Any:
    """``configured_app({"auth": {...}}, **overrides)``: an app with plugin settings."""

    def factory(config: dict[str, Any] | None = None, **overrides: Any) -> FastAPI:
        update = dict(overrides)
        if config is not None:
            update["plugins"] = PluginsConfig(**config)
        return build_app(mnemogate_settings.model_copy(update=update))

    return factory


# -- exposure ------------------------------------------------------------------------------------


async def test_open_on_loopback_while_no_keys_exist(client: httpx.AsyncClient) -> None:
    # Every scope is granted: read, and the admin-only key listing.
    assert (await client.get("/api/v1/stats")).status_code == 200
    listing = await client.get("/api/v1/keys")
    assert listing.status_code == 200
    assert listing.json() == {"items": [], "next_cursor": None}
    # A key created by the open principal belongs to the default tenant.
    key = await create_key(client, "admin")
    assert key["tenant"] == "default"


async def test_a_remote_client_gets_401_while_no_keys_exist(make_app: Any) -> None:
    app = make_app()
    async with running(app), client_from(app) as remote:
        assert_unauthorized(await remote.get("/api/v1/stats"))
        assert_unauthorized(await remote.get("/api/v1/keys"))
        # A remote client cannot bootstrap the first key either.
        assert_unauthorized(await remote.post("/api/v1/keys", json={"name": "x", "scopes": ["admin"]}))
        # Public routes stay public.
        assert (await remote.get("/health")).status_code == 200
        assert (await remote.get("/api/v1/health/ready")).status_code == 200


async def test_allow_open_serves_remote_clients_without_keys(make_app: Any) -> None:
    app = make_app(allow_open=True)
    async with running(app), client_from(app) as remote:
        assert (await remote.get("/api/v1/stats")).status_code == 200
        assert (await remote.get("/api/v1/keys")).status_code == 200


async def test_allow_open_ends_once_a_key_exists(make_app: Any) -> None:
    app = make_app(allow_open=True)
    async with running(app) as local, client_from(app) as remote:
        key = await create_key(local, "read")
        assert_unauthorized(await remote.get("/api/v1/stats"))
        assert (await remote.get("/api/v1/stats", headers=bearer(key["key"]))).status_code == 200


async def test_serving_a_public_address_without_keys_is_refused(make_app: Any) -> None:
    with pytest.raises(StartupError, match=re.escape("refusing to serve 0.0.0.0 without API keys")):
        async with running(make_app(host="0.0.0.0")):
            pass


async def test_serving_a_public_address_with_keys_starts(make_app: Any, mnemogate_settings: Settings) -> None:
    async with running(make_app()) as client:
        key = await create_key(client, "admin")
    app = build_app(mnemogate_settings.model_copy(update={"host": "0.0.0.0"}))
    async with running(app), client_from(app) as remote:
        assert_unauthorized(await remote.get("/api/v1/stats"))
        assert (await remote.get("/api/v1/stats", headers=bearer(key["key"]))).status_code == 200


# -- keys ----------------------------------------------------------------------------------------


async def test_creating_a_key_shows_it_once(client: httpx.AsyncClient) -> None:
    admin = await create_key(client, "admin")
    response = await client.post(
        "/api/v1/keys", json={"name": "ci", "scopes": ["write", "read"]}, headers=bearer(admin["key"])
    )
    assert response.status_code == 201
    created = response.json()
    assert set(created) == KEY_FIELDS | {"key"}
    key = created["key"]
    assert key.startswith("mg_")
    assert len(key) >= 40
    assert created["prefix"] == key[:10]
    assert created["name"] == "ci"
    assert created["scopes"] == ["read", "write"]  # ordered from lowest to highest
    assert created["revoked_at"] is None
    assert uuid.UUID(created["id"])
    datetime.fromisoformat(created["created_at"])

    listing = await client.get("/api/v1/keys", headers=bearer(admin["key"]))
    assert listing.status_code == 200
    assert key not in listing.text
    assert admin["key"] not in listing.text
    assert "key_hash" not in listing.text
    for item in listing.json()["items"]:
        assert set(item) == KEY_FIELDS
    assert {item["id"] for item in listing.json()["items"]} == {created["id"], admin["id"]}


async def test_two_keys_differ(client: httpx.AsyncClient) -> None:
    first = await create_key(client, "admin")
    second = await create_key(client, "admin", headers=bearer(first["key"]))
    assert first["key"] != second["key"]
    assert first["id"] != second["id"]


async def test_requests_need_a_key_once_one_exists(client: httpx.AsyncClient) -> None:
    created = await create_key(client, "admin")
    for method, path in (("GET", "/api/v1/stats"), ("GET", "/api/v1/keys"), ("GET", "/metrics")):
        assert_unauthorized(await client.request(method, path))
    assert_unauthorized(await client.post("/api/v1/keys", json={"name": "x", "scopes": ["read"]}))
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/api/v1/health")).status_code == 200
    assert (await client.get("/api/v1/stats", headers=bearer(created["key"]))).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        lambda key: {"Authorization": f"Bearer {key}"},
        lambda key: {"Authorization": f"bearer {key}"},
        lambda key: {"Authorization": f"Token {key}"},
        lambda key: {"X-API-Key": key},
        lambda key: {"X-API-Key": f"  {key}  "},
    ],
    ids=["bearer", "bearer-lowercase", "token", "x-api-key", "x-api-key-padded"],
)
async def test_key_headers(client: httpx.AsyncClient, headers: Any) -> None:
    created = await create_key(client, "read")
    response = await client.get("/api/v1/stats", headers=headers(created["key"]))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer mg_not-a-real-key-at-all-0000000000000"},
        {"X-API-Key": "mg_not-a-real-key-at-all-0000000000000"},
        {"X-API-Key": "something else"},
    ],
)
async def test_an_invalid_key_is_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    await create_key(client, "admin")
    error = assert_unauthorized(await client.get("/api/v1/stats", headers=headers))
    assert "mg_not-a-real-key" not in error["message"]
    # A key that is presented must be valid, even on a public route.
    assert_unauthorized(await client.get("/health", headers=headers))


async def test_an_invalid_key_is_401_even_while_open(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.get("/api/v1/stats", headers=bearer("mg_wrong")))


async def test_basic_authorization_is_not_a_key(client: httpx.AsyncClient) -> None:
    await create_key(client, "admin")
    response = await client.get("/api/v1/stats", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_unauthorized(response)


# -- scopes --------------------------------------------------------------------------------------


async def test_scopes(client: httpx.AsyncClient) -> None:
    admin = await create_key(client, "admin")
    read = await create_key(client, "read", headers=bearer(admin["key"]))
    write = await create_key(client, "write", headers=bearer(admin["key"]))

    for key in (read, write, admin):
        assert (await client.get("/api/v1/stats", headers=bearer(key["key"]))).status_code == 200
        assert (await client.get("/metrics", headers=bearer(key["key"]))).status_code == 200

    body = {"name": "x", "scopes": ["read"]}
    for key in (read, write):
        error = assert_forbidden(await client.post("/api/v1/keys", json=body, headers=bearer(key["key"])))
        assert "admin" in error["message"]
        assert_forbidden(await client.get("/api/v1/keys", headers=bearer(key["key"])))
        assert_forbidden(await client.delete(f"/api/v1/keys/{admin['id']}", headers=bearer(key["key"])))

    assert (await client.get("/api/v1/keys", headers=bearer(admin["key"]))).status_code == 200
    response = await client.post("/api/v1/keys", json=body, headers=bearer(admin["key"]))
    assert response.status_code == 201


async def test_an_admin_key_can_do_anything_a_read_key_can(client: httpx.AsyncClient) -> None:
    admin = await create_key(client, "admin")
    for path in ("/api/v1/stats", "/api/v1/plugins", "/api/v1/routes", "/api/rate-limit", "/metrics"):
        assert (await client.get(path, headers=bearer(admin["key"]))).status_code == 200, path


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": ["root"]},
        {"name": "x", "scopes": []},
        {"name": "", "scopes": ["read"]},
        {"name": "x" * 201, "scopes": ["read"]},
        {"name": "x", "scopes": ["read"], "tenant": "bad tenant"},
        {"name": "x", "scopes": ["read"], "tenant": "-starts-with-dash"},
        {"scopes": ["read"]},
    ],
)
async def test_invalid_key_requests_are_422(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    error = assert_error(await client.post("/api/v1/keys", json=body), 422, "validation_error")
    assert error["details"]
    assert (await client.get("/api/v1/keys")).json()["items"] == []


async def test_a_malformed_body_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/keys", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "validation_error")


# -- revocation ----------------------------------------------------------------------------------


async def test_revocation_takes_effect_at_once(client: httpx.AsyncClient) -> None:
    admin = await create_key(client, "admin")
    victim = await create_key(client, "read", headers=bearer(admin["key"]))
    assert (await client.get("/api/v1/stats", headers=bearer(victim["key"]))).status_code == 200

    response = await client.delete(f"/api/v1/keys/{victim['id']}", headers=bearer(admin["key"]))
    assert response.status_code == 200
    revoked = response.json()
    assert set(revoked) == KEY_FIELDS
    assert revoked["id"] == victim["id"]
    assert revoked["revoked_at"] is not None

    assert_unauthorized(await client.get("/api/v1/stats", headers=bearer(victim["key"])))
    assert_unauthorized(await client.get("/api/v1/stats", headers={"X-API-Key": victim["key"]}))
    listed = {
        k["id"]: k for k in (await client.get("/api/v1/keys", headers=bearer(admin["key"]))).json()["items"]
    }
    assert listed[victim["id"]]["revoked_at"] == revoked["revoked_at"]

    # Revoking again changes nothing.
    again = await client.delete(f"/api/v1/keys/{victim['id']}", headers=bearer(admin["key"]))
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked["revoked_at"]


async def test_an_admin_can_revoke_its_own_key(client: httpx.AsyncClient) -> None:
    keep = await create_key(client, "admin")
    own = await create_key(client, "admin", headers=bearer(keep["key"]))
    response = await client.delete(f"/api/v1/keys/{own['id']}", headers=bearer(own["key"]))
    assert response.status_code == 200
    assert_unauthorized(await client.get("/api/v1/keys", headers=bearer(own["key"])))
    assert (await client.get("/api/v1/keys", headers=bearer(keep["key"]))).status_code == 200


async def test_revoking_an_unknown_key_is_404(client: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    error = assert_error(await client.delete(f"/api/v1/keys/{missing}"), 404, "not_found")
    assert error["type"] == "not_found_error"


@pytest.mark.parametrize("key_id", ["not-a-uuid", "123", "' OR 1=1 --"])
async def test_a_key_id_that_is_not_a_uuid_is_422(client: httpx.AsyncClient, key_id: str) -> None:
    error = assert_error(await client.delete(f"/api/v1/keys/{key_id}"), 422, "validation_error")
    assert error["details"][0]["loc"] == ["path", "key_id"]


async def test_when_every_key_is_revoked_only_loopback_is_open_again(make_app: Any) -> None:
    app = make_app()
    async with running(app) as local, client_from(app) as remote:
        only = await create_key(local, "admin")
        assert_unauthorized(await local.get("/api/v1/stats"))
        assert (
            await local.delete(f"/api/v1/keys/{only['id']}", headers=bearer(only["key"]))
        ).status_code == 200
        assert (await local.get("/api/v1/stats")).status_code == 200
        assert_unauthorized(await remote.get("/api/v1/stats"))
        assert_unauthorized(await local.get("/api/v1/stats", headers=bearer(only["key"])))


# -- storage -------------------------------------------------------------------------------------


async def stored_rows(app: FastAPI) -> list[dict[str, Any]]:
    async with app.state.registry.db.read() as session:
        result = await session.execute(text("SELECT * FROM auth_api_keys"))
        return [dict(row) for row in result.mappings()]


async def test_keys_are_stored_hashed(make_app: Any) -> None:
    app = make_app()
    async with running(app) as client:
        created = await create_key(client, "admin", name="stored")
        rows = await stored_rows(app)
    assert len(rows) == 1
    row = rows[0]
    key = created["key"]
    for column, value in row.items():
        assert key not in str(value), column
        assert key[10:] not in str(value), column  # not even the secret part
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert row["prefix"] == key[:10]
    assert row["id"] == created["id"]
    assert row["tenant"] == "default"
    assert row["scopes"] == "admin"
    # Nor anywhere else in the database file.
    database = app.state.registry.settings.data_dir / "mnemogate.db"
    for path in (p for p in database.parent.iterdir() if p.is_file()):  # files/ is the MCP file root
        assert key.encode() not in path.read_bytes(), path.name


# -- tenants -------------------------------------------------------------------------------------


async def test_an_open_server_creates_keys_for_any_tenant_once(client: httpx.AsyncClient) -> None:
    first = await create_key(client, "admin", tenant="acme")
    assert first["tenant"] == "acme"
    # The server is no longer open: the next key needs an admin key, of that tenant.
    assert_unauthorized(await client.post("/api/v1/keys", json={"name": "x", "scopes": ["read"]}))
    second = await create_key(client, "read", headers=bearer(first["key"]))
    assert second["tenant"] == "acme"


async def test_tenant_isolation(make_app: Any, mnemogate_settings: Settings) -> None:
    # Tenants' first admin keys come from the operator's CLI.
    admin_a = await cli_key(mnemogate_settings, "admin", "a")
    admin_b = await cli_key(mnemogate_settings, "admin", "b")
    async with running(make_app()) as client:
        as_a = bearer(admin_a["key"])
        read_a = await create_key(client, "read", headers=as_a)
        read_b = await create_key(client, "read", headers=bearer(admin_b["key"]))
        assert (read_a["tenant"], read_b["tenant"]) == ("a", "b")
        await check_tenant_isolation(client, admin_a, read_a, admin_b, read_b)


async def check_tenant_isolation(
    client: httpx.AsyncClient,
    admin_a: dict[str, Any],
    read_a: dict[str, Any],
    admin_b: dict[str, Any],
    read_b: dict[str, Any],
) -> None:
    as_a = bearer(admin_a["key"])

    listing = (await client.get("/api/v1/keys", headers=as_a)).json()
    assert {k["id"] for k in listing["items"]} == {admin_a["id"], read_a["id"]}
    assert {k["tenant"] for k in listing["items"]} == {"a"}
    assert read_b["key"] not in str(listing) and admin_b["id"] not in str(listing)

    denied = await client.post(
        "/api/v1/keys", json={"name": "x", "scopes": ["read"], "tenant": "b"}, headers=as_a
    )
    assert_forbidden(denied)
    explicit = await client.post(
        "/api/v1/keys", json={"name": "y", "scopes": ["read"], "tenant": "a"}, headers=as_a
    )
    assert explicit.status_code == 201
    assert explicit.json()["tenant"] == "a"

    assert_error(await client.delete(f"/api/v1/keys/{read_b['id']}", headers=as_a), 404, "not_found")
    assert (await client.get("/api/v1/stats", headers=bearer(read_b["key"]))).status_code == 200
    assert_error(await client.delete(f"/api/v1/keys/{admin_b['id']}", headers=as_a), 404, "not_found")
    listing_b = (await client.get("/api/v1/keys", headers=bearer(admin_b["key"]))).json()
    assert {k["id"] for k in listing_b["items"]} == {admin_b["id"], read_b["id"]}
    assert all(k["revoked_at"] is None for k in listing_b["items"])

    assert (await client.delete(f"/api/v1/keys/{read_a['id']}", headers=as_a)).status_code == 200


# -- pagination ----------------------------------------------------------------------------------


async def list_all(client: httpx.AsyncClient, headers: dict[str, str], limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/api/v1/keys", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def check_key_pagination(client: httpx.AsyncClient, admin: dict[str, Any]) -> None:
    """Seven keys of the admin's tenant (itself and six more) besides another tenant's key."""
    headers = bearer(admin["key"])
    for index in range(6):
        await create_key(client, "read", name=f"k{index}", headers=headers)
    full = (await client.get("/api/v1/keys", params={"limit": 500}, headers=headers)).json()
    assert full["next_cursor"] is None
    assert len(full["items"]) == 7
    assert {k["tenant"] for k in full["items"]} == {admin["tenant"]}
    for limit in (1, 2, 3, 7):
        paged = await list_all(client, headers, limit)
        ids = [k["id"] for k in paged]
        assert len(ids) == len(set(ids)), limit
        assert paged == full["items"], limit
    stamps = [(k["created_at"], k["id"]) for k in full["items"]]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    first = (await client.get("/api/v1/keys", params={"limit": 7}, headers=headers)).json()
    assert first["next_cursor"] is None

    for cursor in ("nonsense", "WzFd", "WyJ4IiwieSJd"):  # garbage, [1], ["x","y"]
        bad = await client.get("/api/v1/keys", params={"cursor": cursor}, headers=headers)
        assert_error(bad, 400, "invalid_cursor")
    assert_error(await client.get("/api/v1/keys", params={"limit": 0}, headers=headers), 422)


async def test_key_listing_is_paginated(make_app: Any, mnemogate_settings: Settings) -> None:
    await cli_key(mnemogate_settings, "admin", "other")
    admin = await cli_key(mnemogate_settings, "admin", "t")
    async with running(make_app()) as client:
        await check_key_pagination(client, admin)


@pytest.mark.postgres
async def test_keys_on_postgresql(mnemogate_settings: Settings, postgres_url: str) -> None:
    settings = mnemogate_settings.model_copy(update={"database_url": SecretStr(postgres_url)})
    await cli_key(settings, "admin", "other")
    admin_t = await cli_key(settings, "admin", "t")
    admin_a = await cli_key(settings, "admin", "a")
    admin_b = await cli_key(settings, "admin", "b")
    app = build_app(settings)
    async with running(app) as client:
        await check_key_pagination(client, admin_t)
        read_a = await create_key(client, "read", headers=bearer(admin_a["key"]))
        read_b = await create_key(client, "read", headers=bearer(admin_b["key"]))
        await check_tenant_isolation(client, admin_a, read_a, admin_b, read_b)
        rows = await stored_rows(app)
        assert len(rows) == 4 + 6 + 2 + 1
        secrets = [k["key"] for k in (admin_t, admin_a, admin_b, read_a, read_b)]
        assert all(secret not in str(value) for row in rows for value in row.values() for secret in secrets)
        revoked = await client.delete(f"/api/v1/keys/{read_b['id']}", headers=bearer(admin_b["key"]))
        assert revoked.status_code == 200
        assert_unauthorized(await client.get("/api/v1/stats", headers=bearer(read_b["key"])))


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"cache_seconds": -1}, "plugins.auth.cache_seconds"),
        ({"cache_seconds": "soon"}, "plugins.auth.cache_seconds"),
        ({"cache_secs": 1}, "unknown setting"),
    ],
)
def test_invalid_settings_stop_the_app(configured_app: Any, config: dict[str, Any], message: str) -> None:
    with pytest.raises(StartupError, match="plugin 'auth'") as failure:
        configured_app({"auth": config})
    assert message in str(failure.value)


async def test_a_key_revoked_elsewhere_stops_working_without_cache(
    configured_app: Any, mnemogate_settings: Settings
) -> None:
    admin = await cli_key(mnemogate_settings, "admin", "default")
    reader = await cli_key(mnemogate_settings, "read", "default")
    async with running(configured_app({"auth": {"cache_seconds": 0}})) as client:
        assert (await client.get("/api/v1/stats", headers=bearer(reader["key"]))).status_code == 200
        result = await cli(mnemogate_settings, "keys", "revoke", reader["id"])
        assert result.exit_code == 0, result.output
        assert_unauthorized(await client.get("/api/v1/stats", headers=bearer(reader["key"])))
        assert (await client.get("/api/v1/stats", headers=bearer(admin["key"]))).status_code == 200


# -- CLI -----------------------------------------------------------------------------------------


async def test_cli_create_list_revoke(make_app: Any, mnemogate_settings: Settings) -> None:
    created = await cli_key(mnemogate_settings, "admin", "t1")
    assert set(created) == KEY_FIELDS | {"key"}
    assert created["key"].startswith("mg_")
    assert created["tenant"] == "t1"
    assert created["scopes"] == ["admin"]
    assert created["name"] == "cli"

    several = await cli(
        mnemogate_settings,
        "keys",
        "create",
        "--name",
        "ops",
        "--scope",
        "read",
        "--scope",
        "write",
        "--tenant",
        "t2",
    )
    assert several.exit_code == 0, several.output
    second = json.loads(several.stdout)
    assert second["scopes"] == ["read", "write"]
    assert second["name"] == "ops"

    listed = await cli(mnemogate_settings, "keys", "list")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert {r["id"] for r in rows} == {created["id"], second["id"]}
    assert created["key"] not in listed.stdout and second["key"] not in listed.stdout
    assert all(set(r) == KEY_FIELDS for r in rows)
    only_t1 = json.loads(
        (await cli(mnemogate_settings, "keys", "list", "--tenant", "t1", "--limit", "1")).stdout
    )
    assert [r["id"] for r in only_t1] == [created["id"]]
    paged = json.loads((await cli(mnemogate_settings, "keys", "list", "--limit", "1")).stdout)
    assert paged == rows

    # The key made by the CLI works against a server using the same database.
    async with running(make_app()) as client:
        assert_unauthorized(await client.get("/api/v1/stats"))
        response = await client.get("/api/v1/keys", headers=bearer(created["key"]))
        assert response.status_code == 200
        assert [k["id"] for k in response.json()["items"]] == [created["id"]]
        made = await create_key(client, "read", headers=bearer(created["key"]))
        assert made["tenant"] == "t1"

    revoked = await cli(mnemogate_settings, "keys", "revoke", created["id"])
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout)["revoked_at"] is not None
    async with running(make_app()) as client:
        assert_unauthorized(await client.get("/api/v1/keys", headers=bearer(created["key"])))
        assert (await client.get("/api/v1/stats", headers=bearer(second["key"]))).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "revoke", "00000000-0000-4000-8000-000000000000"], "no API key with id"),
        (["keys", "revoke", "not-a-key"], "no API key with id"),
        (["keys", "create", "--tenant", "bad tenant!"], "tenant"),
        (["keys", "create", "--scope", "root"], "root"),
        (["keys", "list", "--limit", "0"], "--limit"),
    ],
)
async def test_cli_errors_are_messages(mnemogate_settings: Settings, args: list[str], message: str) -> None:
    result = await cli(mnemogate_settings, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
