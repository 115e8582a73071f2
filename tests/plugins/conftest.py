from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from fastapi import FastAPI

from mnemogate.plugins.auth.models import KeyCreate

KeyMaker = Callable[..., Awaitable[str]]


async def _create_key(app: FastAPI, tenant: str = "default", scopes: tuple[str, ...] = ("write",)) -> str:
    keys = app.state.registry.services["auth.keys"]
    return (await keys.create(KeyCreate(name="test", scopes=list(scopes), tenant=tenant))).key  # type: ignore[arg-type]


@pytest.fixture
def create_key() -> KeyMaker:
    """``await create_key(app, tenant="acme", scopes=("write",))``: an API key of a running app."""
    return _create_key
