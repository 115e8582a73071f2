from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openai import AsyncOpenAI
from proxy_upstream import Upstream

from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app, served


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = Upstream()
    async with served(server.app) as base:  # type: ignore[arg-type]
        server.base = base
        yield server


def gateway_plugins(upstream_base: str, **proxy: Any) -> PluginsConfig:
    """Settings with two OpenAI-compatible providers and one Anthropic account on the test
    upstream (plus the mock), and a rate limit the tests never reach."""
    up = {
        "name": "up",
        "base_url": f"{upstream_base}/v1",
        "api_key": "sk-upstream-key-1",
        "models": ["gpt-test", {"id": "priced", "input_price_per_mtok": 1.0, "output_price_per_mtok": 2.0}],
        "timeout_seconds": 1.0,
    }
    backup = {
        "name": "backup",
        "base_url": f"{upstream_base}/v1",
        "models": ["gpt-backup"],
        "catalogue": "openai",
    }
    down = {
        "name": "down",
        "base_url": "http://127.0.0.1:9/v1",
        "models": ["gpt-down"],
        "connect_timeout_seconds": 1,
    }
    claude = {"name": "claude", "base_url": upstream_base, "api_key": "ak-test", "models": ["claude-test"]}
    return PluginsConfig.model_validate(
        {
            "providers": {"openai_compatible": [up, backup, down], "anthropic": [claude]},
            "proxy": {"retry_backoff_seconds": 0.01, **proxy},
            "ratelimit": {"requests_per_minute": 100000},
        }
    )


@dataclass
class Running:
    """A served gateway and an API key for it."""

    base: str
    key: str
    app: FastAPI

    def sdk(self, key: str | None = None) -> AsyncOpenAI:
        return AsyncOpenAI(base_url=f"{self.base}/v1", api_key=key or self.key, max_retries=0)

    def http(self, key: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers={"Authorization": f"Bearer {key or self.key}"})


@pytest.fixture
def gateway(
    mnemogate_settings: Settings, upstream: Upstream, create_key: Callable[..., Any]
) -> Callable[..., AbstractAsyncContextManager[Running]]:
    """``async with gateway(**proxy_settings) as running``: a real mnemogate server in front of
    the test upstream, with an API key."""

    @asynccontextmanager
    async def start(
        plugins: Iterable[object] = (), disabled: Iterable[str] = (), **proxy: Any
    ) -> AsyncIterator[Running]:
        settings = mnemogate_settings.model_copy(update={"plugins": gateway_plugins(upstream.base, **proxy)})
        app = build_app(settings, plugins=plugins, disabled=disabled)
        async with served(app) as base:
            yield Running(base, await create_key(app), app)

    return start
