"""A third-party plugin as its author ships it: its own distribution with an entry point in the
``mnemogate`` group, installed with pip, used through the real ``mnemogate`` command.

Nothing is registered in code: the plugin is found through its installed metadata, exactly as
in a user's environment. Every command runs in a subprocess with a clean environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mnemogate.core.testing import ENV_PREFIX, free_port

MNEMOGATE = Path(sys.executable).with_name("mnemogate")
HELLO_HOOKS = ["register_commands", "register_routes", "register_settings"]

HELLO_PLUGIN = '''
import click
from fastapi import APIRouter
from pydantic import BaseModel

from mnemogate.core.cli import Context, pass_context
from mnemogate.core.dependencies import RegistryDep
from mnemogate.core.hookspecs import hookimpl


class HelloSettings(BaseModel):
    greeting: str = "hi"


router = APIRouter()


@router.get("/hello-plugin")
async def hello_plugin(registry: RegistryDep) -> dict[str, str]:
    return {"plugin": "hello", "greeting": registry.plugin_settings("hello").greeting}


@click.command()
@pass_context
def hello(ctx: Context) -> None:
    """Say hello."""
    click.echo(f"{ctx.registry.plugin_settings('hello').greeting} from the hello plugin")


@hookimpl
def register_settings(register):
    register(HelloSettings)


@hookimpl
def register_routes(register):
    register(router, tags=["hello"], scope=None)


@hookimpl
def register_commands(cli):
    cli.add_command(hello)
'''

BROKEN_PLUGIN = """
raise ImportError("hello_dependency_that_is_not_installed is missing")
"""


def write_distribution(root: Path, *, name: str, package: str, entry_point: str, plugin: str) -> Path:
    """A minimal source distribution of a plugin: pyproject.toml and one package."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name}"
            version = "1.2.3"
            description = "A mnemogate plugin used by mnemogate's tests"
            requires-python = ">=3.11"
            dependencies = ["mnemogate"]

            [project.entry-points.mnemogate]
            {entry_point} = "{package}.plugin"

            [tool.setuptools]
            packages = ["{package}"]
            """
        )
    )
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    (root / package / "plugin.py").write_text(plugin)
    return root


def pip_install_target(distribution: Path, site: Path) -> None:
    """Offline: no dependencies (mnemogate is the dev virtualenv's), the installed setuptools."""
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
    result = subprocess.run(
        [*pip, "--target", str(site), str(distribution)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass(frozen=True)
class Site:
    """Where a plugin distribution is installed, and a working directory to run commands in."""

    site: Path
    workdir: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(ENV_PREFIX) and name != "PYTHONPATH"
        }
        env["PYTHONPATH"] = str(self.site)
        env[f"{ENV_PREFIX}DATA_DIR"] = str(self.workdir / "data")
        env.update(extra)
        return env

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MNEMOGATE), *args],
            cwd=self.workdir,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def json(self, *args: str, **env: str) -> Any:
        result = self.run(*args, **env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def installed_site(root: Path, **distribution: str) -> Site:
    site = root / "site"
    pip_install_target(write_distribution(root / "dist", **distribution), site)
    workdir = root / "work"
    workdir.mkdir()
    return Site(site, workdir)


@pytest.fixture(scope="module")
def hello_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return installed_site(
        tmp_path_factory.mktemp("hello"),
        name="hello-mnemogate",
        package="hello_mnemogate",
        entry_point="hello",
        plugin=HELLO_PLUGIN,
    )


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return installed_site(
        tmp_path_factory.mktemp("broken"),
        name="broken-mnemogate",
        package="broken_mnemogate",
        entry_point="broken",
        plugin=BROKEN_PLUGIN,
    )


def hello_route(site: Site, **env: str) -> dict[str, Any] | None:
    routes = site.json("routes", "--json", **env)
    return next((r for r in routes if (r["method"], r["path"]) == ("GET", "/hello-plugin")), None)


def hello_listing(site: Site, **env: str) -> dict[str, Any] | None:
    return next((p for p in site.json("plugins", **env) if p["name"] == "hello"), None)


def assert_hello_is_active(site: Site, **env: str) -> None:
    assert hello_route(site, **env) == {
        "method": "GET",
        "path": "/hello-plugin",
        "plugin": "hello",
        "scope": None,
        "kind": "http",
        "duplicate": False,
    }
    assert hello_listing(site, **env) == {
        "name": "hello",
        "version": "1.2.3",
        "builtin": False,
        "enabled": True,
        "source": "hello-mnemogate",
        "hooks": HELLO_HOOKS,
    }
    command = site.run("hello", **env)
    assert command.returncode == 0, command.stderr
    assert command.stdout == "hi from the hello plugin\n"


def assert_no_hello_command(site: Site, **env: str) -> None:
    command = site.run("hello", **env)
    assert command.returncode == 2
    assert "No such command 'hello'" in command.stderr


def test_installed_plugin_contributes_route_command_and_listing(hello_site: Site) -> None:
    assert_hello_is_active(hello_site)


def test_plugin_settings_have_defaults_and_come_from_the_environment(hello_site: Site) -> None:
    assert hello_site.json("config", "show")["plugins"]["hello"] == {"greeting": "hi"}
    shown = hello_site.json("config", "show", MNEMOGATE_PLUGINS__HELLO__GREETING="hey")
    assert shown["plugins"]["hello"] == {"greeting": "hey"}
    command = hello_site.run("hello", MNEMOGATE_PLUGINS__HELLO__GREETING="hey")
    assert command.stdout == "hey from the hello plugin\n"


@pytest.mark.slow
def test_load_plugins_empty_loads_no_entry_point(hello_site: Site) -> None:
    env = {"MNEMOGATE_LOAD_PLUGINS": ""}
    assert hello_route(hello_site, **env) is None
    assert hello_listing(hello_site, **env) is None
    assert_no_hello_command(hello_site, **env)


@pytest.mark.slow
def test_load_plugins_naming_the_plugin_loads_it(hello_site: Site) -> None:
    assert_hello_is_active(hello_site, MNEMOGATE_LOAD_PLUGINS="hello")


@pytest.mark.slow
def test_disabled_plugin_contributes_nothing(hello_site: Site) -> None:
    env = {"MNEMOGATE_PLUGINS__DISABLED": "hello"}
    assert hello_route(hello_site, **env) is None
    # Still listed among installed plugins, switched off and without hooks.
    listing = hello_listing(hello_site, **env)
    assert listing is not None
    assert (listing["enabled"], listing["hooks"]) == (False, [])
    assert_no_hello_command(hello_site, **env)


def test_plugin_failing_to_import_stops_the_command_with_one_line(broken_site: Site) -> None:
    result = broken_site.run("routes")
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: plugin 'broken' ")
    assert "failed to import" in lines[0]
    assert "hello_dependency_that_is_not_installed is missing" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("env", [{"MNEMOGATE_LOAD_PLUGINS": ""}, {"MNEMOGATE_PLUGINS__DISABLED": "broken"}])
def test_plugin_failing_to_import_is_harmless_when_not_loaded(broken_site: Site, env: dict[str, str]) -> None:
    routes = broken_site.json("routes", "--json", **env)
    assert ("GET", "/health") in {(r["method"], r["path"]) for r in routes}


@dataclass(frozen=True)
class ServeRun:
    response: httpx.Response | None
    exit_code: int | None
    log: str


@pytest.fixture(scope="module")
def serve_run(hello_site: Site, tmp_path_factory: pytest.TempPathFactory) -> ServeRun:
    """``mnemogate serve`` with the plugin installed: GET /hello-plugin once it answers, then
    SIGTERM. Records what happened; the tests below judge it."""
    root = tmp_path_factory.mktemp("serve")
    port = free_port()
    log = root / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(MNEMOGATE), "serve", "--port", str(port)],
            cwd=hello_site.workdir,
            env=hello_site.env(MNEMOGATE_DATA_DIR=str(root / "data")),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            response = poll(f"http://127.0.0.1:{port}/hello-plugin", server, seconds=30)
            server.send_signal(signal.SIGTERM)
            exit_code = server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    return ServeRun(response, exit_code, log.read_text())


def poll(url: str, server: subprocess.Popen[bytes], *, seconds: float) -> httpx.Response | None:
    """GET ``url`` until it answers 200; None if the server exits or ``seconds`` pass first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return None


@pytest.mark.slow
def test_served_plugin_route_answers_and_sigterm_shuts_down_cleanly(serve_run: ServeRun) -> None:
    assert serve_run.response is not None, f"GET /hello-plugin never answered 200:\n{serve_run.log}"
    assert serve_run.response.json() == {"plugin": "hello", "greeting": "hi"}
    assert serve_run.exit_code is not None, "the server did not exit within 30 s of SIGTERM"
    assert "Application shutdown complete." in serve_run.log
    assert "Traceback" not in serve_run.log


@pytest.mark.slow
def test_sigterm_exit_code_is_zero(serve_run: ServeRun) -> None:
    assert serve_run.exit_code == 0, serve_run.log
