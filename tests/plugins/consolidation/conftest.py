from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app


@pytest.fixture
def consolidation_app(mnemogate_settings: Settings) -> Callable[..., FastAPI]:
    """``consolidation_app(consolidation={...})``: an app on the hashing embedder, with no
    scheduled runs unless asked."""

    def make(**tables: dict[str, Any]) -> FastAPI:
        merged: dict[str, Any] = {
            "memory": {"embedder": "hashing"},
            "ratelimit": {"requests_per_minute": 100_000},
            **tables,
        }
        merged["consolidation"] = {
            "interval_seconds": 0,
            "cluster_threshold": 0.45,
            **tables.get("consolidation", {}),
        }
        settings = mnemogate_settings.model_copy(update={"plugins": PluginsConfig.model_validate(merged)})
        return build_app(settings)

    return make
