"""The ``mnemogate`` command: serve, plugins, routes, db, config, plus plugins' own commands."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import click
import orjson

from mnemogate.core import __version__
from mnemogate.core.errors import StartupError
from mnemogate.core.plugins import PluginHost
from mnemogate.core.registry import Registry
from mnemogate.core.settings import Settings, load_settings, redact

T = TypeVar("T")


class Context:
    """What every command gets: settings and the plugin host, built once per invocation."""

    def __init__(self, settings: Settings, host: PluginHost) -> None:
        self.settings = settings
        self.host = host
        self._registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry.build(self.settings, self.host)
        return self._registry

    def run(self, work: Callable[[Registry], Awaitable[T]], *, migrate: bool = True) -> T:
        """Run async work against an open database, migrated first unless told otherwise (or
        auto_migrate is off)."""
        from mnemogate.core.db import Database, Migrator

        async def runner() -> T:
            registry = self.registry
            registry.db = Database(self.settings.resolved_database_url)
            try:
                if migrate and self.settings.auto_migrate:
                    await Migrator(registry.db, registry.migrations).upgrade()
                return await work(registry)
            finally:
                await registry.db.close()

        return asyncio.run(runner())


pass_context = click.make_pass_decorator(Context)


def echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def build_cli(settings: Settings, host: PluginHost) -> click.Group:
    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="mnemogate")
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        """mnemogate: long-term memory for AI agents and an LLM gateway."""
        ctx.obj = Context(settings, host)

    cli.add_command(serve)
    cli.add_command(plugins)
    cli.add_command(routes)
    cli.add_command(db)
    cli.add_command(config)
    host.call_each("register_commands", lambda _plugin: {"cli": cli})
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    try:
        settings = load_settings()
        host = PluginHost.build(disabled=settings.plugins.disabled, load_plugins=settings.load_plugins)
        cli = build_cli(settings, host)
    except StartupError as exc:
        fail(str(exc))
        return
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="mnemogate")
    except StartupError as exc:
        fail(str(exc))


# -- serve ---------------------------------------------------------------------------------------


@click.command()
@click.option("--host", help="address to bind (default 127.0.0.1; others need API keys)")
@click.option("--port", type=int, help="port (default 8000)")
@click.option("--workers", type=int, help="worker processes (default 1)")
@click.option("--reload", is_flag=True, help="restart when source files change (development)")
@click.option(
    "--allow-open", is_flag=True, default=None, help="serve a non-loopback address without API keys"
)
@pass_context
def serve(
    ctx: Context,
    host: str | None,
    port: int | None,
    workers: int | None,
    reload: bool,
    allow_open: bool | None,
) -> None:
    """Run the server (upgrades the database first)."""
    import uvicorn

    from mnemogate.core.app import create_app

    overrides = {"host": host, "port": port, "workers": workers, "allow_open": allow_open}
    for name, value in overrides.items():
        if value is not None:
            # Workers and the reloader start fresh interpreters: they read settings from the environment.
            os.environ[f"MNEMOGATE_{name.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    settings = load_settings()
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": settings.graceful_timeout,
        "server_header": False,
    }
    # After its graceful shutdown uvicorn re-raises SIGTERM/SIGINT to the handlers it found; ours
    # turn that into a normal exit (status 0, buffered logs flushed) instead of death by signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    if reload or settings.workers > 1:
        if settings.auto_migrate:
            # Migrate once here rather than racing in every worker process.
            ctx.run(_nothing)
            os.environ["MNEMOGATE_AUTO_MIGRATE"] = "false"
        uvicorn.run(
            "mnemogate.core.app:app_factory", factory=True, workers=settings.workers, reload=reload, **options
        )
    else:
        uvicorn.run(create_app(settings, host=ctx.host), **options)
    # uvicorn exits by itself (code 3) when start-up fails; the reason is already logged.
    sys.exit(0)


def _exit_cleanly(signum: int, _frame: object) -> None:
    sys.exit(0)


async def _nothing(_registry: Registry) -> None:
    return None


# -- introspection -------------------------------------------------------------------------------


@click.command()
@click.option("--all", "show_all", is_flag=True, help="include built-in plugins")
@pass_context
def plugins(ctx: Context, show_all: bool) -> None:
    """List installed plugins as JSON (name, version, hooks)."""
    echo_json(ctx.host.listing(include_builtins=show_all))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@pass_context
def routes(ctx: Context, as_json: bool) -> None:
    """List every mounted route: method, path, plugin, scope; duplicates are flagged."""
    from mnemogate.core.app import create_app, duplicate_routes

    app = create_app(ctx.settings, host=ctx.host, strict_routes=False, configure_logs=False)
    inventory = app.state.registry.mounted
    clashes = duplicate_routes(inventory)
    rows = [
        {
            "method": r.method,
            "path": r.path,
            "plugin": r.plugin,
            "scope": r.scope,
            "kind": r.kind,
            "duplicate": (r.method, r.path) in clashes,
        }
        for r in sorted(inventory, key=lambda r: (r.path, r.method))
    ]
    if as_json:
        echo_json(rows)
    else:
        width = max((len(r["path"]) for r in rows), default=4)
        click.echo(f"{'METHOD':<7} {'PATH':<{width}} {'PLUGIN':<16} SCOPE")
        for r in rows:
            flag = "  DUPLICATE" if r["duplicate"] else ""
            click.echo(
                f"{r['method']:<7} {r['path']:<{width}} {r['plugin']:<16} {r['scope'] or 'public'}{flag}"
            )
    if clashes:
        sys.exit(1)


@click.group()
def config() -> None:
    """Inspect configuration."""


@config.command("show")
@pass_context
def config_show(ctx: Context) -> None:
    """Print the effective settings as JSON, secrets redacted."""
    values = ctx.settings.model_dump(mode="python", exclude={"plugins"})
    values["plugins"] = {"disabled": ctx.settings.plugins.disabled}
    for plugin, model in ctx.registry.settings_models.items():
        values["plugins"][plugin] = model
    echo_json(redact(values))


# -- database ------------------------------------------------------------------------------------


@click.group()
def db() -> None:
    """Database migrations (each plugin has its own branch)."""


def migrator(registry: Registry) -> Any:
    from mnemogate.core.db import Migrator

    return Migrator(registry.db, registry.migrations)


@db.command("upgrade")
@click.option("--plugin", help="only this plugin's branch")
@pass_context
def db_upgrade(ctx: Context, plugin: str | None) -> None:
    """Upgrade the database to the newest revision of every enabled plugin."""
    echo_json(ctx.run(lambda registry: migrator(registry).upgrade(plugin), migrate=False))


@db.command("current")
@pass_context
def db_current(ctx: Context) -> None:
    """Show each plugin's current revision and whether it is behind."""

    async def work(registry: Registry) -> dict[str, Any]:
        current = await migrator(registry).current()
        pending = await migrator(registry).heads_pending()
        return {
            "database": registry.db.describe(),
            "plugins": {p: {"revision": current[p], "pending": pending[p]} for p in current},
        }

    echo_json(ctx.run(work, migrate=False))


@db.command("history")
@click.option("--plugin", help="only this plugin's branch")
@pass_context
def db_history(ctx: Context, plugin: str | None) -> None:
    """List every plugin's revisions, newest first."""

    async def work(registry: Registry) -> list[dict[str, Any]]:
        return migrator(registry).history(plugin)

    echo_json(ctx.run(work, migrate=False))


@db.command("revision")
@click.argument("plugin")
@click.option("-m", "--message", required=True)
@click.option("--autogenerate", is_flag=True, help="compare the plugin's metadata with the database")
@pass_context
def db_revision(ctx: Context, plugin: str, message: str, autogenerate: bool) -> None:
    """Create a new revision in a plugin's migrations directory (for plugin authors)."""
    click.echo(
        ctx.run(
            lambda registry: migrator(registry).revision(plugin, message, autogenerate=autogenerate),
            migrate=False,
        )
    )
