"""Shared fixtures: mnemogate's own testing plugin plus the real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

pytest_plugins = ["mnemogate.core.testing"]

POSTGRES_ADMIN_URL = os.environ.get(
    "MNEMOGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty database on the machine's PostgreSQL server, dropped afterwards."""
    import asyncpg

    name = f"mnemogate_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
