"""Test helpers and pytest fixtures for mnemogate and for plugin authors.

Use them from a ``conftest.py`` with ``pytest_plugins = ["mnemogate.core.testing"]``::

    async def test_my_route(make_client):
        async with make_client(plugins=[my_plugin]) as client:
            assert (await client.get("/my-route")).status_code == 200

Every app gets its own temporary data directory and database, loads no third-party entry
points unless asked, and runs its full start-up and shutdown. A plugin passed to
``make_client``/``make_app`` exists for that app only, so nothing leaks between tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mnemogate.core.app import create_app
from mnemogate.core.settings import Settings

ENV_PREFIX = "MNEMOGATE_"
TEST_BASE_URL = "http://mnemogate.test"


def isolated_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: own data directory, no third-party plugins, text logs."""
    values: dict[str, Any] = {"data_dir": data_dir, "load_plugins": [], "log_format": "text"}
    values.update(overrides)
    return Settings(**values)


def build_app(settings: Settings, *, plugins: Iterable[object] = (), disabled: Iterable[str] = ()) -> FastAPI:
    if disabled:
        settings = settings.model_copy(
            update={
                "plugins": settings.plugins.model_copy(
                    update={"disabled": [*settings.plugins.disabled, *disabled]}
                )
            }
        )
    return create_app(settings, extra_plugins=plugins)


@contextlib.asynccontextmanager
async def running(app: FastAPI, *, headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app (its lifespan) and yield an HTTP client talking to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL, headers=headers) as client:
            yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def served(app: FastAPI, *, port: int | None = None) -> AsyncIterator[str]:
    """Serve the app with a real uvicorn server on loopback; yields its base URL."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("the test server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


# -- pytest fixtures -----------------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No MNEMOGATE_* variables or mnemogate.toml from the developer's shell leak into a test."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def mnemogate_settings(clean_environment: None, tmp_path: Path) -> Settings:
    return isolated_settings(tmp_path / "data")


@pytest.fixture
def make_app(mnemogate_settings: Settings) -> Callable[..., FastAPI]:
    """``make_app(plugins=[...], disabled=[...], **setting_overrides)`` builds an isolated app."""

    def factory(*, plugins: Iterable[object] = (), disabled: Iterable[str] = (), **overrides: Any) -> FastAPI:
        settings = (
            isolated_settings(mnemogate_settings.data_dir, **overrides) if overrides else mnemogate_settings
        )
        return build_app(settings, plugins=plugins, disabled=disabled)

    return factory


@pytest.fixture
def make_client(
    make_app: Callable[..., FastAPI],
) -> Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with make_client(plugins=[...]) as client`` runs an isolated app for one block."""

    def factory(
        *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        return running(make_app(**kwargs), headers=headers)

    return factory


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with every built-in plugin, running open (no API keys yet)."""
    async with make_client() as http:
        yield http
