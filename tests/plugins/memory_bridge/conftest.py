"""Fixtures of the memory bridge tests: an app whose memory uses the fast hashing embedder, with
the recording provider (``rec/model``, see tests/plugins/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app


@pytest.fixture
def bridge_app(mnemogate_settings: Settings, recorder: Any) -> Callable[..., FastAPI]:
    """``bridge_app(memory_bridge={...}, ...)``: an app with the recording provider."""

    def make(**tables: dict[str, Any]) -> FastAPI:
        merged: dict[str, Any] = {
            "memory": {"embedder": "hashing"},
            "ratelimit": {"requests_per_minute": 100_000},
            **tables,
        }
        settings = mnemogate_settings.model_copy(update={"plugins": PluginsConfig.model_validate(merged)})
        return build_app(settings, plugins=[recorder])

    return make
