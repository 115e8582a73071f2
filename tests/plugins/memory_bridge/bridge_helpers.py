"""Helpers of the memory bridge tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx


async def until(probe: Callable[[], Awaitable[Any]], seconds: float = 5.0) -> Any:
    """Poll ``probe`` until it answers something truthy (capture runs after the answer)."""
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.02)


async def episodes_of(client: httpx.AsyncClient, session_id: str, **headers: str) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/v1/episodes", params={"session_id": session_id, "limit": 100}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()["items"][::-1]
