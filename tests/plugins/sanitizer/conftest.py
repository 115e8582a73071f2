from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openai import AsyncOpenAI
from recording_upstream import RecordingUpstream

from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app, served


@pytest.fixture
async def upstream() -> AsyncIterator[RecordingUpstream]:
    server = RecordingUpstream()
    async with served(server.app) as base:  # type: ignore[arg-type]
        server.base = base
        yield server


@dataclass
class Gateway:
    base: str
    key: str
    admin: str
    app: FastAPI

    def sdk(self) -> AsyncOpenAI:
        return AsyncOpenAI(base_url=f"{self.base}/v1", api_key=self.key, max_retries=0)

    def http(self, key: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers={"Authorization": f"Bearer {key or self.key}"})


@pytest.fixture
def gateway(
    mnemogate_settings: Settings, upstream: RecordingUpstream, create_key: Callable[..., Any]
) -> Callable[..., AbstractAsyncContextManager[Gateway]]:
    """``async with gateway(**sanitizer_settings) as gw``: a served mnemogate in front of the
    recording upstream, with a write key and an admin key of one tenant."""

    @asynccontextmanager
    async def start(plugins: Iterable[object] = (), **sanitizer: Any) -> AsyncIterator[Gateway]:
        tables = {
            "providers": {
                "openai_compatible": [{"name": "up", "base_url": f"{upstream.base}/v1", "models": ["m"]}]
            },
            "proxy": {"default_model": "up/m", "retries": 0},
            "ratelimit": {"requests_per_minute": 1_000_000},
            "sanitizer": {"flush_interval_seconds": 0.05, **sanitizer},
        }
        settings = mnemogate_settings.model_copy(update={"plugins": PluginsConfig.model_validate(tables)})
        app = build_app(settings, plugins=plugins)
        async with served(app) as base:
            key = await create_key(app, scopes=("write",))
            admin = await create_key(app, scopes=("admin",))
            yield Gateway(base, key, admin, app)

    return start
