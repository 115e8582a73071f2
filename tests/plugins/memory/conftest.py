"""Fixtures of the memory test suite. Every test runs once per storage backend (``backend``,
``backend_database`` of tests/conftest.py): the embedded one (SQLite) and PostgreSQL + pgvector,
each test on a database of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app, running


@pytest.fixture
def backend_settings(mnemogate_settings: Settings, backend_database: str | None) -> Settings:
    """Settings whose database is served by the backend under test."""
    if backend_database is None:
        return mnemogate_settings
    return mnemogate_settings.model_copy(update={"database_url": SecretStr(backend_database)})


def with_plugin_settings(settings: Settings, **tables: dict[str, Any]) -> Settings:
    """``settings`` with plugin tables (``memory={...}``); the memory engine defaults to the
    fast hashing embedder here."""
    merged: dict[str, Any] = {"memory": {"embedder": "hashing"}, **tables}
    return settings.model_copy(update={"plugins": PluginsConfig(**merged)})


@pytest.fixture
def memory_app(backend_settings: Settings) -> Callable[..., FastAPI]:
    """``memory_app(memory={...}, sqlite_index={...}, extra_plugins=[...], database_url=...)``:
    an app on the backend under test."""

    def factory(
        *, extra_plugins: Sequence[object] = (), database_url: str | None = None, **tables: dict[str, Any]
    ) -> FastAPI:
        settings = with_plugin_settings(backend_settings, **tables)
        if database_url is not None:
            settings = settings.model_copy(update={"database_url": SecretStr(database_url)})
        return build_app(settings, plugins=extra_plugins)

    return factory


@pytest.fixture
def memory_client(
    memory_app: Callable[..., FastAPI],
) -> Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    def factory(**tables: dict[str, Any]) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        return running(memory_app(**tables))

    return factory


async def _make_key(app: FastAPI, tenant: str, scope: str = "write") -> dict[str, str]:
    from mnemogate.plugins.auth.models import KeyCreate

    made = await app.state.registry.services["auth.keys"].create(
        KeyCreate(name=tenant, scopes=[scope], tenant=tenant)  # type: ignore[list-item]
    )
    return {"Authorization": f"Bearer {made.key}"}


@pytest.fixture
def make_key() -> Callable[..., Any]:
    """``await make_key(app, tenant, scope="write")``: headers with a fresh key of ``tenant``
    (as `mnemogate keys create --tenant` makes one)."""
    return _make_key
