"""The plugin manager: built-in plugins from one tuple, third-party ones from entry points.

``MNEMOGATE_PLUGINS__DISABLED`` (or ``plugins.disabled`` in ``mnemogate.toml``) switches any
plugin off: it is never registered, so it contributes nothing. ``MNEMOGATE_LOAD_PLUGINS``
restricts which entry points are even imported: unset loads all, empty loads none, a
comma-separated list loads only those.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import logging
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from mnemogate.core import __version__, hookspecs
from mnemogate.core.errors import StartupError

log = logging.getLogger("mnemogate.plugins")

ENTRY_POINT_GROUP = hookspecs.PROJECT

BUILTIN_PLUGINS: tuple[str, ...] = (
    "mnemogate.plugins.system",
    "mnemogate.plugins.hardening",
    "mnemogate.plugins.observability",
    "mnemogate.plugins.auth",
    "mnemogate.plugins.ratelimit",
    # Early, so it stops late: the final checkpoint comes after the other plugins flushed.
    "mnemogate.plugins.persistence",
    "mnemogate.plugins.sqlite_index",
    "mnemogate.plugins.pgvector_index",
    "mnemogate.plugins.embedders",
    "mnemogate.plugins.memory",
    "mnemogate.plugins.episodic",
    "mnemogate.plugins.semantic",
    "mnemogate.plugins.procedural",
    "mnemogate.plugins.mem0_compat",
    "mnemogate.plugins.providers",
    "mnemogate.plugins.sessions",
    "mnemogate.plugins.proxy",
    "mnemogate.plugins.sanitizer",
    # pipeline hooks run last-registered first: compaction, then compression (masking is trylast)
    "mnemogate.plugins.compress",
    "mnemogate.plugins.compaction",
    "mnemogate.plugins.exports",
    "mnemogate.plugins.cline",
    "mnemogate.plugins.websocket",
    "mnemogate.plugins.memory_bridge",
    "mnemogate.plugins.consolidation",
    "mnemogate.plugins.mcp_memory",
    # MCP servers first: they start (publish their services) before the gateway builds them.
    "mnemogate.plugins.mcp_sequential_thinking",
    "mnemogate.plugins.mcp_fast_filesystem",
    "mnemogate.plugins.mcp_json_query",
    "mnemogate.plugins.mcp_context_compression",
    "mnemogate.plugins.mcp_pruner",
    "mnemogate.plugins.mcp_memory_server",
    "mnemogate.plugins.mcp_gateway",
    "mnemogate.plugins.visualization",
)


@dataclass(slots=True)
class PluginInfo:
    name: str
    version: str | None
    builtin: bool
    enabled: bool
    source: str
    hooks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "builtin": self.builtin,
            "enabled": self.enabled,
            "source": self.source,
            "hooks": self.hooks,
        }


def builtin_name(module_path: str) -> str:
    return module_path.rsplit(".", 1)[-1]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Start-up (importing plugins, building the app, starting it) makes hundreds of thousands
    of objects that live as long as the app, and little garbage: the cyclic collector would walk
    them hundreds of times, a sixth of the start-up time. Usable as a decorator too."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class PluginHost:
    """A pluggy manager plus what the host knows about each plugin (enabled or not)."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    @classmethod
    @collector_paused()
    def build(
        cls,
        *,
        disabled: Iterable[str] = (),
        load_plugins: Sequence[str] | None = None,
        extra_plugins: Iterable[object] = (),
        builtins: Sequence[str] = BUILTIN_PLUGINS,
    ) -> PluginHost:
        host = cls()
        off = set(disabled)
        for module_path in builtins:
            host._add_builtin(module_path, enabled=builtin_name(module_path) not in off)
        for entry_point in _entry_points():
            host._add_entry_point(entry_point, load_plugins, off)
        for plugin in extra_plugins:
            name = plugin_name(plugin)
            host._register(
                name, plugin, PluginInfo(name, None, False, name not in off, "(registered in code)")
            )
        unknown = off - set(host.infos)
        if unknown:
            log.warning("plugins.disabled names unknown plugins: %s", ", ".join(sorted(unknown)))
        host.pm.hook.register_hookspecs(register=host.pm.add_hookspecs)
        host.pm.check_pending()
        for info in host.infos.values():
            if info.enabled:
                plugin = host.pm.get_plugin(info.name)
                info.hooks = sorted(caller.name for caller in host.pm.get_hookcallers(plugin) or ())
        return host

    def _add_builtin(self, module_path: str, *, enabled: bool) -> None:
        name = builtin_name(module_path)
        info = PluginInfo(name, __version__, True, enabled, module_path)
        if not enabled:
            self.infos[name] = info
            return
        try:
            module = importlib.import_module(f"{module_path}.plugin")
        except Exception as exc:
            raise StartupError(
                f"built-in plugin {name!r} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        self._register(name, module, info)

    def _add_entry_point(
        self, entry_point: EntryPoint, load_plugins: Sequence[str] | None, off: set[str]
    ) -> None:
        name = entry_point.name
        dist_name = entry_point.dist.name if entry_point.dist else None
        version = entry_point.dist.version if entry_point.dist else None
        if load_plugins is not None and name not in load_plugins and dist_name not in load_plugins:
            return
        info = PluginInfo(name, version, False, name not in off, dist_name or entry_point.value)
        if not info.enabled:
            self.infos[name] = info
            return
        try:
            plugin = entry_point.load()
        except Exception as exc:
            origin = dist_name or "an unknown distribution"
            raise StartupError(
                f"plugin {name!r} (entry point {entry_point.value!r} of {origin}) "
                f"failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        self._register(name, plugin, info)

    def _register(self, name: str, plugin: object, info: PluginInfo) -> None:
        if name in self.infos:
            raise StartupError(f"two plugins are named {name!r}: {self.infos[name].source} and {info.source}")
        self.infos[name] = info
        if not info.enabled:
            return
        try:
            self.pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise StartupError(f"plugin {name!r} cannot be registered: {exc}") from exc

    # -- calling hooks ---------------------------------------------------------------------------

    def impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        """Implementations of a hook in pluggy's call order (tryfirst first, trylast last)."""
        return list(reversed(getattr(self.pm.hook, hook_name).get_hookimpls()))

    def impls_in_registration_order(self, hook_name: str) -> list[pluggy.HookImpl]:
        """Implementations in plugin registration order (built-ins first, in BUILTIN_PLUGINS
        order, then entry points by name, then plugins registered in code). Registration and
        lifecycle hooks run in this order; ``tryfirst``/``trylast`` matter only to pipelines."""
        position = {name: index for index, name in enumerate(self.infos)}
        return sorted(getattr(self.pm.hook, hook_name).get_hookimpls(), key=lambda i: position[i.plugin_name])

    def call_each(self, hook_name: str, make_args: Callable[[str], dict[str, Any]]) -> list[tuple[str, Any]]:
        """Call every implementation of a hook, in registration order, with arguments made for
        its plugin.

        Registration hooks use this so each ``register`` callback knows which plugin calls it.
        Returns ``(plugin name, result)`` pairs; results may be awaitables for async hooks.
        """
        results = []
        for impl in self.impls_in_registration_order(hook_name):
            args = make_args(impl.plugin_name)
            results.append((impl.plugin_name, impl.function(**{a: args[a] for a in impl.argnames})))
        return results

    async def call_each_async(self, hook_name: str, make_args: Callable[[str], dict[str, Any]]) -> None:
        """``call_each`` for hooks whose implementations may be async: each one is awaited
        before the next runs, so registration order holds."""
        for impl in self.impls_in_registration_order(hook_name):
            args = make_args(impl.plugin_name)
            try:
                result = impl.function(**{a: args[a] for a in impl.argnames})
                if inspect.isawaitable(result):
                    await result
            except StartupError:
                raise
            except Exception as exc:
                raise StartupError(
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
                ) from exc

    async def run_pipeline(self, hook_name: str, **kwargs: Any) -> None:
        """Run a pipeline hook whose plain implementations may be async.

        Plain implementations run in call order (``tryfirst`` first, ``trylast`` last).
        Wrappers (``wrapper=True``; pluggy requires them to be generator functions, so they
        are synchronous) run around all of them: the part before ``yield`` first, the part
        after it last, and an exception from inside is thrown in at the ``yield``.
        """
        impls = self.impls(hook_name)
        wrappers = [i for i in impls if i.wrapper]
        started: list[Generator[Any, Any, Any]] = []
        error: BaseException | None = None
        try:
            for impl in wrappers:
                generator = impl.function(**{a: kwargs[a] for a in impl.argnames})
                next(generator)
                started.append(generator)
            for impl in impls:
                if impl.wrapper or impl.hookwrapper:
                    continue
                result = impl.function(**{a: kwargs[a] for a in impl.argnames})
                if inspect.isawaitable(result):
                    await result
        except BaseException as exc:
            error = exc
        for generator in reversed(started):
            error = _finish_wrapper(generator, error)
        if error is not None:
            raise error

    async def broadcast(self, hook_name: str, **kwargs: Any) -> None:
        """Call every implementation, awaiting async ones; errors are logged, never raised."""
        for impl in self.impls(hook_name):
            try:
                result = impl.function(**{a: kwargs[a] for a in impl.argnames})
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                log.error(
                    "plugin %r failed in %s: %s: %s", impl.plugin_name, hook_name, type(exc).__name__, exc
                )

    def enabled_names(self) -> list[str]:
        return [name for name, info in self.infos.items() if info.enabled]

    def listing(self, *, include_builtins: bool = False) -> list[dict[str, Any]]:
        return [info.as_dict() for info in self.infos.values() if include_builtins or not info.builtin]


def _finish_wrapper(generator: Generator[Any, Any, Any], error: BaseException | None) -> BaseException | None:
    """Resume one wrapper after the inner calls; returns the error still in flight (or None)."""
    try:
        if error is None:
            next(generator)
        else:
            generator.throw(error)
    except StopIteration:
        return None
    except BaseException as exc:
        return exc
    return RuntimeError(f"a {generator.__name__} wrapper yielded more than once")


def plugin_name(plugin: object) -> str:
    """The name a plugin object registers under: its ``plugin_name`` attribute, else the module
    (``pkg.feature.plugin`` counts as ``feature``) or class name."""
    explicit = getattr(plugin, "plugin_name", None)
    if isinstance(explicit, str):
        return explicit
    dotted = getattr(plugin, "__name__", None)
    if isinstance(dotted, str):
        parts = dotted.split(".")
        return parts[-2] if parts[-1] == "plugin" and len(parts) > 1 else parts[-1]
    return type(plugin).__name__


def _entry_points() -> list[EntryPoint]:
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
