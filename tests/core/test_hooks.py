"""Every hook of the host, exercised by test plugins: resource registration, pipelines,
broadcasts, answer hooks, plugin-defined hookspecs and the lifecycle."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import FastAPI

from mnemogate.core.contracts import ChatContext, MemoryEvent, Principal
from mnemogate.core.errors import StartupError
from mnemogate.core.hookspecs import HOOK_NAMES, hookimpl, hookspec
from mnemogate.core.testing import running


class ResourcePlugin:
    """Implements every resource hook, some of them async (as I/O-doing plugins would)."""

    plugin_name = "resources"

    @hookimpl
    def register_storage_backends(self, register: Any) -> None:
        register("sqlite-test", lambda db: ("index for", db.dialect))

    @hookimpl
    async def register_embedders(self, register: Any) -> None:
        register("test-embedder", object())

    @hookimpl
    def register_memory_types(self, register: Any) -> None:
        register("test-memory", object())

    @hookimpl
    async def register_providers(self, register: Any) -> None:
        register("test-provider", object())

    @hookimpl
    def register_compaction_strategies(self, register: Any) -> None:
        register("test-strategy", object())

    @hookimpl
    def register_sanitizers(self, register: Any) -> None:
        register("test-secret", object())

    @hookimpl
    def register_mcp_servers(self, register: Any) -> None:
        register("test-server", object())


async def test_resource_hooks_fill_the_registry_with_attribution(make_app: Any) -> None:
    app = make_app(plugins=[ResourcePlugin()], disabled=["mcp_gateway"])
    async with running(app):
        registry = app.state.registry
        assert "sqlite-test" in registry.storage_backends
        for attribute, name in [
            ("embedders", "test-embedder"),
            ("memory_types", "test-memory"),
            ("providers", "test-provider"),
            ("compaction_strategies", "test-strategy"),
            ("detectors", "test-secret"),
            ("mcp_servers", "test-server"),
        ]:
            assert name in getattr(registry, attribute)
            assert registry.owners[(attribute, name)] == "resources"


async def test_two_plugins_registering_one_resource_name_fail_startup(make_app: Any) -> None:
    class Rival:
        plugin_name = "rival"

        @hookimpl
        def register_providers(self, register: Any) -> None:
            register("test-provider", object())

    app = make_app(plugins=[ResourcePlugin(), Rival()])
    with pytest.raises(
        StartupError, match="'test-provider' is registered by both plugin 'resources' and plugin 'rival'"
    ):
        async with running(app):
            pass


class Recorder:
    """Records the order in which chat_request implementations run."""

    def __init__(self) -> None:
        self.calls: list[str] = []


def pipeline_plugins(recorder: Recorder) -> list[object]:
    class Injection:
        plugin_name = "injection"

        @hookimpl(tryfirst=True)
        async def chat_request(self, ctx: ChatContext) -> None:
            recorder.calls.append("inject")
            ctx.body["messages"].insert(0, {"role": "system", "content": "memory"})

    class Masking:
        plugin_name = "masking"

        @hookimpl(trylast=True)
        def chat_request(self, ctx: ChatContext) -> None:
            recorder.calls.append("mask")
            for message in ctx.body["messages"]:
                message["content"] = message["content"].replace("hunter2", "[secret]")

    class Compaction:
        plugin_name = "test_compaction"

        @hookimpl
        async def chat_request(self, ctx: ChatContext) -> None:
            recorder.calls.append("compact")

    class Timing:
        plugin_name = "timing"

        @hookimpl(wrapper=True)
        def chat_request(self, ctx: ChatContext) -> Any:
            recorder.calls.append("timing:before")
            try:
                yield
            except ValueError:
                recorder.calls.append("timing:saw-error")
                raise
            recorder.calls.append("timing:after")

    class SyncWrapper:
        plugin_name = "sync_wrapper"

        @hookimpl(wrapper=True)
        def chat_request(self, ctx: ChatContext) -> Any:
            recorder.calls.append("sync:before")
            yield
            recorder.calls.append("sync:after")

    # Registration order deliberately differs from the intended call order.
    return [Masking(), Compaction(), Timing(), Injection(), SyncWrapper()]


async def test_chat_request_pipeline_runs_injection_first_and_masking_last(make_app: Any) -> None:
    recorder = Recorder()
    app = make_app(plugins=pipeline_plugins(recorder))
    ctx = ChatContext(
        principal=Principal.open(), body={"messages": [{"role": "user", "content": "pw hunter2"}]}
    )
    await app.state.registry.host.run_pipeline("chat_request", ctx=ctx)
    plain = [c for c in recorder.calls if ":" not in c]
    assert plain == ["inject", "compact", "mask"]
    assert recorder.calls[0].endswith(":before") and recorder.calls[-1].endswith(":after")
    assert ctx.body["messages"] == [
        {"role": "system", "content": "memory"},
        {"role": "user", "content": "pw [secret]"},
    ]


async def test_pipeline_errors_reach_wrappers_and_the_caller(make_app: Any) -> None:
    recorder = Recorder()

    class Refuser:
        plugin_name = "refuser"

        @hookimpl
        def chat_request(self, ctx: ChatContext) -> None:
            raise ValueError("refused")

    app = make_app(plugins=[*pipeline_plugins(recorder), Refuser()])
    with pytest.raises(ValueError, match="refused"):
        await app.state.registry.host.run_pipeline(
            "chat_request", ctx=ChatContext(principal=Principal.open(), body={"messages": []})
        )
    assert "timing:saw-error" in recorder.calls and "timing:after" not in recorder.calls


async def test_chat_response_and_memory_event_broadcasts_log_failures(
    make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Any] = []

    class Observer:
        plugin_name = "observer"

        @hookimpl
        async def chat_response(self, ctx: ChatContext) -> None:
            seen.append(("response", ctx.status))

        @hookimpl
        def memory_event(self, event: MemoryEvent) -> None:
            seen.append(("memory", event.action, list(event.ids)))

    class Faulty:
        plugin_name = "faulty"

        @hookimpl
        def memory_event(self, event: MemoryEvent) -> None:
            raise RuntimeError("consolidation queue full")

    host = make_app(plugins=[Observer(), Faulty()]).state.registry.host
    ctx = ChatContext(principal=Principal.open(), body={}, status=200)
    await host.broadcast("chat_response", ctx=ctx)
    with caplog.at_level(logging.ERROR, logger="mnemogate.plugins"):
        await host.broadcast("memory_event", event=MemoryEvent("t1", "episodic", "created", ["e1"]))
    assert seen == [("response", 200), ("memory", "created", ["e1"])]
    assert "plugin 'faulty' failed in memory_event" in caplog.text


def test_plugins_can_add_hookspecs_for_their_extension_points(make_app: Any) -> None:
    class Specs:
        @hookspec
        def register_widgets(self, register: Any) -> None:
            """A plugin-defined extension point."""

    class Owner:
        plugin_name = "owner"

        @hookimpl
        def register_hookspecs(self, register: Any) -> None:
            register(Specs)

    class Contributor:
        plugin_name = "contributor"

        @hookimpl
        def register_widgets(self, register: Any) -> None:
            register("gear")

    host = make_app(plugins=[Contributor(), Owner()]).state.registry.host
    widgets: list[tuple[str, str]] = []
    host.call_each("register_widgets", lambda plugin: {"register": lambda w: widgets.append((plugin, w))})
    assert widgets == [("contributor", "gear")]


async def test_startup_and_shutdown_run_in_order_and_failures_are_named(make_app: Any) -> None:
    events: list[str] = []

    def lifecycle(name: str, fail: bool = False) -> object:
        class Plugin:
            plugin_name = name

            @hookimpl
            async def startup(self, app: FastAPI) -> None:
                if fail:
                    raise ConnectionError("upstream refused")
                events.append(f"start {name}")

            @hookimpl
            def shutdown(self, app: FastAPI) -> None:
                events.append(f"stop {name}")

        return Plugin()

    async with running(make_app(plugins=[lifecycle("first"), lifecycle("second")])):
        assert events == ["start first", "start second"]
    assert events[-2:] == ["stop second", "stop first"]

    events.clear()
    app = make_app(plugins=[lifecycle("first"), lifecycle("broken", fail=True), lifecycle("never")])
    with pytest.raises(ConnectionError):
        async with running(app):
            pass
    assert events == ["start first", "stop first"]
    error = app.state.registry.startup_error
    assert "starting plugin 'broken'" in error and "ConnectionError: upstream refused" in error


async def test_requires_api_keys_is_an_answer_hook(make_app: Any) -> None:
    from mnemogate.core.app import first_result

    class Gatekeeper:
        plugin_name = "gatekeeper"

        @hookimpl(tryfirst=True)
        async def requires_api_keys(self, app: FastAPI) -> bool:
            return True

    app = make_app(plugins=[Gatekeeper()])
    async with running(app):
        assert await first_result(app.state.registry.host, "requires_api_keys", app=app) is True


def test_every_hook_is_implemented_by_some_test_plugin() -> None:
    """Hooks whose features come later are still exercised here (the names below are the
    hooks this module and the other core tests implement)."""
    exercised = {
        "register_hookspecs", "register_settings", "register_routes", "register_middleware",
        "register_ws_channels", "register_migrations", "register_commands", "register_event_bus",
        "register_storage_backends", "register_embedders", "register_memory_types", "register_providers",
        "register_compaction_strategies", "register_sanitizers", "register_mcp_servers", "requires_api_keys",
        "startup", "shutdown", "chat_request", "chat_response", "memory_event",
        "database_replaced",  # tests/plugins/persistence: a restore calls it
    }  # fmt: skip
    assert set(HOOK_NAMES) == exercised


async def test_an_app_can_start_again_after_it_stopped(make_app: Any) -> None:
    """Test clients and reloaders run an app's lifespan more than once."""
    app = make_app(plugins=[ResourcePlugin()], disabled=["mcp_gateway"])
    for _ in range(2):
        async with running(app) as client:
            assert (await client.get("/api/v1/stats")).status_code == 200
            assert "test-provider" in app.state.registry.providers
    assert not app.state.registry.db_open and not app.state.registry.services
