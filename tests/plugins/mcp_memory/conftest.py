from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app


@pytest.fixture
def memory_routes_app(mnemogate_settings: Settings, recorder: Any) -> Callable[..., FastAPI]:
    """``memory_routes_app(**plugin_tables)``: an app on the hashing embedder with the recording
    provider, no scheduled consolidation."""

    def make(**tables: dict[str, Any]) -> FastAPI:
        merged: dict[str, Any] = {
            "memory": {"embedder": "hashing"},
            "ratelimit": {"requests_per_minute": 100_000},
            "consolidation": {"interval_seconds": 0, "cluster_threshold": 0.45},
            "mcp_memory": {"cluster_threshold": 0.45},
            **tables,
        }
        settings = mnemogate_settings.model_copy(update={"plugins": PluginsConfig.model_validate(merged)})
        return build_app(settings, plugins=[recorder])

    return make
