from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app, running


@pytest.fixture
def viz_app(mnemogate_settings: Settings) -> Callable[..., FastAPI]:
    """An app with every built-in plugin, embedding with the fast hashing embedder; on the
    PostgreSQL database ``database_url`` when given."""

    def make(*, database_url: str | None = None, **tables: dict[str, Any]) -> FastAPI:
        plugins = PluginsConfig.model_validate({"memory": {"embedder": "hashing"}, **tables})
        update: dict[str, Any] = {"plugins": plugins}
        if database_url is not None:
            update["database_url"] = SecretStr(database_url)
        return build_app(mnemogate_settings.model_copy(update=update))

    return make


@pytest.fixture
def viz_client(viz_app: Callable[..., FastAPI]) -> Callable[..., Any]:
    @contextlib.asynccontextmanager
    async def make(**tables: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
        async with running(viz_app(**tables)) as client:
            yield client

    return make
