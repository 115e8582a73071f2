"""The introspection commands: plugins, routes, and commands contributed by plugins."""

from __future__ import annotations

from typing import Any

import click
import orjson
from click.testing import CliRunner
from fastapi import APIRouter

from mnemogate.core.cli import build_cli
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.plugins import BUILTIN_PLUGINS, PluginHost


class Contributor:
    plugin_name = "contributor"

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.command()
        @click.argument("who")
        def greet(who: str) -> None:
            """Say hello."""
            click.echo(f"hello {who}")

    @hookimpl
    def register_routes(self, register: Any) -> None:
        router = APIRouter()

        @router.get("/health")
        async def shadow() -> dict[str, str]:
            return {}

        register(router, scope=None)


def cli_for(settings: Any, *plugins: object) -> click.Group:
    return build_cli(settings, PluginHost.build(load_plugins=[], extra_plugins=plugins))


def test_plugins_lists_third_party_only_unless_all(mnemogate_settings: Any) -> None:
    runner = CliRunner()
    cli = cli_for(mnemogate_settings, Contributor())
    listed = orjson.loads(runner.invoke(cli, ["plugins"]).output)
    assert [p["name"] for p in listed] == ["contributor"]
    assert set(listed[0]) == {"name", "version", "builtin", "enabled", "source", "hooks"}
    assert listed[0]["hooks"] == ["register_commands", "register_routes"]
    everything = orjson.loads(runner.invoke(cli, ["plugins", "--all"]).output)
    assert [p["name"] for p in everything] == [m.rsplit(".", 1)[-1] for m in BUILTIN_PLUGINS] + [
        "contributor"
    ]


def test_plugin_commands_are_added(mnemogate_settings: Any) -> None:
    result = CliRunner().invoke(cli_for(mnemogate_settings, Contributor()), ["greet", "world"])
    assert result.exit_code == 0 and result.output == "hello world\n"


def test_routes_shows_the_inventory_and_flags_duplicates(mnemogate_settings: Any) -> None:
    runner = CliRunner()
    clean = runner.invoke(cli_for(mnemogate_settings), ["routes", "--json"])
    assert clean.exit_code == 0
    rows = orjson.loads(clean.output)
    assert {"method": "DELETE", "path": "/api/v1/keys/{key_id}", "plugin": "auth", "scope": "admin",
            "kind": "http", "duplicate": False} in rows  # fmt: skip
    assert not any(r["duplicate"] for r in rows)

    clashing = runner.invoke(cli_for(mnemogate_settings, Contributor()), ["routes"])
    assert clashing.exit_code == 1
    flagged = [line for line in clashing.output.splitlines() if line.endswith("DUPLICATE")]
    assert len(flagged) == 2 and all(line.split()[:2] == ["GET", "/health"] for line in flagged)
    assert {line.split()[2] for line in flagged} == {"system", "contributor"}
