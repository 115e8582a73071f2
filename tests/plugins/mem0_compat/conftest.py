"""Apps for the Mem0 compatibility tests: the hashing embedder (fast, deterministic) unless a
test asks for another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app


@pytest.fixture
def mem0_app(mnemogate_settings: Settings) -> Callable[..., FastAPI]:
    """``mem0_app(mem0_compat={...}, memory={...}, disabled=[...])``: an app on a fresh database."""

    def factory(*, disabled: tuple[str, ...] = (), **tables: dict[str, Any]) -> FastAPI:
        merged: dict[str, Any] = {"memory": {"embedder": "hashing"}, **tables}
        settings = mnemogate_settings.model_copy(update={"plugins": PluginsConfig(**merged)})
        return build_app(settings, disabled=disabled)

    return factory
