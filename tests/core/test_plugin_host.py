"""The plugin host: registration, attribution, clashes, switching plugins off, hook calling."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import APIRouter, FastAPI
from sqlalchemy import inspect as sa_inspect

from mnemogate.core.app import create_app
from mnemogate.core.cli import build_cli
from mnemogate.core.errors import StartupError
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.plugins import BUILTIN_PLUGINS, PluginHost, builtin_name
from mnemogate.core.settings import PluginsConfig
from mnemogate.core.testing import running


def router_with(path: str, answer: str) -> APIRouter:
    router = APIRouter()

    @router.get(path)
    async def endpoint() -> dict[str, str]:
        return {"from": answer}

    return router


class HelloPlugin:
    plugin_name = "hello"

    @hookimpl
    def register_routes(self, register: Any) -> None:
        register(router_with("/hello", "hello"), scope=None)


class ClashingPlugin:
    plugin_name = "clashing"

    @hookimpl
    def register_routes(self, register: Any) -> None:
        register(router_with("/hello", "clashing"), scope=None)


def test_builtins_register_in_tuple_order(mnemogate_settings: Any) -> None:
    host = PluginHost.build(load_plugins=[])
    assert list(host.infos)[: len(BUILTIN_PLUGINS)] == [builtin_name(m) for m in BUILTIN_PLUGINS]
    assert all(info.enabled and info.builtin for info in host.infos.values())
    assert "register_routes" in host.infos["system"].hooks


async def test_a_plugin_passed_in_code_mounts_its_route(make_client: Any) -> None:
    async with make_client(plugins=[HelloPlugin()]) as client:
        assert (await client.get("/hello")).json() == {"from": "hello"}
        routes = (await client.get("/api/v1/routes", params={"limit": 500})).json()["items"]
        assert {"method": "GET", "path": "/hello", "plugin": "hello", "scope": None} in [
            {k: r[k] for k in ("method", "path", "plugin", "scope")} for r in routes
        ]


def test_duplicate_route_stops_startup_naming_both_plugins(make_app: Any) -> None:
    with pytest.raises(StartupError) as caught:
        make_app(plugins=[HelloPlugin(), ClashingPlugin()])
    message = str(caught.value)
    assert "GET /hello" in message and "'hello'" in message and "'clashing'" in message


def test_duplicate_route_with_a_builtin_names_the_builtin(make_app: Any) -> None:
    class Shadow:
        plugin_name = "shadow"

        @hookimpl
        def register_routes(self, register: Any) -> None:
            register(router_with("/health", "shadow"), scope=None)

    with pytest.raises(StartupError, match=r"GET /health .*'system'.*'shadow'"):
        make_app(plugins=[Shadow()])


def test_middleware_order_clash_names_both_plugins(make_app: Any) -> None:
    class Early:
        plugin_name = "early"

        @hookimpl
        def register_middleware(self, register: Any) -> None:
            register(lambda app: app, order=10, name="mine")

    with pytest.raises(StartupError) as caught:
        make_app(plugins=[Early()])
    assert (
        "order 10" in str(caught.value)
        and "'hardening'" in str(caught.value)
        and "'early'" in str(caught.value)
    )


def test_builtin_that_fails_to_import_is_named() -> None:
    with pytest.raises(StartupError, match="built-in plugin 'nonexistent' failed to import"):
        PluginHost.build(builtins=("mnemogate.plugins.nonexistent",), load_plugins=[])


def test_two_plugins_with_one_name_are_refused(make_app: Any) -> None:
    class Impostor:
        plugin_name = "auth"

    with pytest.raises(StartupError, match="two plugins are named 'auth'"):
        make_app(plugins=[Impostor()])


async def test_disabled_plugin_contributes_nothing(make_app: Any, mnemogate_settings: Any) -> None:
    app = make_app(disabled=["auth", "ratelimit"])
    registry = app.state.registry
    assert not any(r.plugin in ("auth", "ratelimit") for r in registry.mounted)
    assert not any(m.plugin in ("auth", "ratelimit") for m in registry.middleware)
    assert not any(m.plugin == "auth" for m in registry.migrations)
    assert "auth" not in registry.settings_models
    assert registry.host.infos["auth"].enabled is False
    async with running(app) as client:
        assert (await client.get("/api/v1/keys")).status_code == 404
        assert (await client.get("/api/rate-limit")).status_code == 404
        plugins = {p["name"]: p for p in (await client.get("/api/v1/plugins")).json()["items"]}
        assert plugins["auth"]["enabled"] is False and plugins["auth"]["hooks"] == []

        def tables(sync_conn: Any) -> list[str]:
            return sa_inspect(sync_conn).get_table_names()

        async with registry.db.engine.connect() as conn:
            assert "auth_api_keys" not in await conn.run_sync(tables)

    settings = mnemogate_settings.model_copy(
        update={"plugins": mnemogate_settings.plugins.model_copy(update={"disabled": ["auth"]})}
    )
    cli = build_cli(settings, PluginHost.build(disabled=["auth"], load_plugins=[]))
    assert "keys" not in cli.commands
    result = CliRunner().invoke(cli, ["keys", "list"])
    assert result.exit_code != 0 and "No such command" in result.output


def test_bad_plugin_setting_names_the_plugin(mnemogate_settings: Any) -> None:
    from pydantic import BaseModel

    class GreetingSettings(BaseModel):
        times: int = 1

    class Greeter:
        plugin_name = "greeter"

        @hookimpl
        def register_settings(self, register: Any) -> None:
            register(GreetingSettings)

    def app_with(table: dict[str, Any]) -> FastAPI:
        plugins = PluginsConfig.model_validate({"greeter": table})
        return create_app(
            mnemogate_settings.model_copy(update={"plugins": plugins}), extra_plugins=[Greeter()]
        )

    with pytest.raises(StartupError, match=r"plugin 'greeter': invalid setting plugins\.greeter\.times"):
        app_with({"times": "many"})
    with pytest.raises(StartupError, match=r"unknown setting\(s\) plugins\.greeter\.tims"):
        app_with({"tims": 2})
    assert app_with({"times": "3"}).state.registry.plugin_settings("greeter").times == 3
