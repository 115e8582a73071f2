"""Shared fixtures: mnemogate's own testing plugin plus the real PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from mnemogate.core.testing import build_app, isolated_settings, running

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


async def postgres_admin(statement: str) -> None:
    """Run one statement on the test server's admin database (CREATE/DROP DATABASE)."""
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def postgres_database_url(name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the test server."""
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    return f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(scope="session")
def postgres_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated once per test session (every built-in plugin's tables, pgvector
    included) that ``postgres_migrated_url`` copies; dropped at the end of the session."""
    name = f"mnemogate_test_template_{uuid.uuid4().hex[:12]}"
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        settings = isolated_settings(
            Path(tmp_path_factory.mktemp("template")), database_url=SecretStr(postgres_database_url(name))
        )

        async def migrate() -> None:
            async with running(build_app(settings)):
                pass

        asyncio.run(migrate())
        yield name
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_migrated_url(postgres_template: str) -> Iterator[str]:
    """A fresh, migrated database of the test's own (a copy of the session's template), dropped
    afterwards: its SQLAlchemy URL."""
    name = f"mnemogate_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"'))
    try:
        yield postgres_database_url(name)
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend under test: a test asking for it runs once on SQLite and once on
    PostgreSQL + pgvector."""
    return request.param


@pytest.fixture
def backend_database(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The database URL of the test on ``backend`` (None: the SQLite file of the data directory)."""
    return None if backend == "sqlite" else request.getfixturevalue("postgres_migrated_url")
