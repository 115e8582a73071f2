"""The database layer on SQLite (embedded default) and on the real PostgreSQL server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy import inspect as sa_inspect

from mnemogate.core.cli import build_cli
from mnemogate.core.db import Database, Migrator, UTCDateTime
from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.plugins import PluginHost
from mnemogate.core.testing import isolated_settings, running

metadata = MetaData()
counters = Table(
    "dbtest_counters",
    metadata,
    Column("name", String(20), primary_key=True),
    Column("value", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=True),
)

FIRST_REVISION = '''"""counters

Revision ID: dbtest_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from mnemogate.core.db import UTCDateTime

revision = "dbtest_0001"
down_revision = None
branch_labels = ("dbtest",)
depends_on = None


def upgrade():
    op.create_table(
        "dbtest_counters",
        sa.Column("name", sa.String(20), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=True),
    )


def downgrade():
    op.drop_table("dbtest_counters")
'''


def migrating_plugin(location: Path) -> object:
    class DbTest:
        plugin_name = "dbtest"

        @hookimpl
        def register_migrations(self, register: Any) -> None:
            register(location, metadata=metadata)

    return DbTest()


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    location = tmp_path / "dbtest_migrations"
    location.mkdir()
    (location / "0001_counters.py").write_text(FIRST_REVISION)
    return location


async def table_names(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(lambda sync: sa_inspect(sync).get_table_names())


async def test_sqlite_runs_in_wal_mode_in_the_data_directory(make_app: Any, mnemogate_settings: Any) -> None:
    app = make_app()
    async with running(app):
        db = app.state.registry.db
        assert db.path == (mnemogate_settings.data_dir / "mnemogate.db").resolve()
        async with db.read() as session:
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_write_is_one_transaction(tmp_path: Path, migrations: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        await Migrator(db, [_spec(migrations)]).upgrade()
        with pytest.raises(RuntimeError):
            async with db.write() as session:
                await session.execute(insert(counters).values(name="a", value=1))
                raise RuntimeError("half-way")
        async with db.read() as session:
            assert (await session.execute(select(counters))).all() == []
    finally:
        await db.close()


async def test_concurrent_read_modify_write_transactions_all_succeed(
    tmp_path: Path, migrations: Path
) -> None:
    """Writers take SQLite's write lock up front, so concurrent increments neither fail with
    'database is locked' nor lose updates."""
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        await Migrator(db, [_spec(migrations)]).upgrade()
        async with db.write() as session:
            await session.execute(insert(counters).values(name="hits", value=0))

        async def increment() -> None:
            async with db.write() as session:
                value = (
                    await session.execute(select(counters.c.value).where(counters.c.name == "hits"))
                ).scalar_one()
                await asyncio.sleep(0)
                await session.execute(
                    counters.update().where(counters.c.name == "hits").values(value=value + 1)
                )

        await asyncio.gather(*(increment() for _ in range(40)))
        async with db.read() as session:
            assert (await session.execute(select(counters.c.value))).scalar_one() == 40
    finally:
        await db.close()


async def test_timestamps_are_utc_aware(tmp_path: Path, migrations: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        await Migrator(db, [_spec(migrations)]).upgrade()
        local = datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
        async with db.write() as session:
            await session.execute(insert(counters).values(name="t", value=0, at=local))
        async with db.read() as session:
            stored = (await session.execute(select(counters.c.at))).scalar_one()
        assert stored == local and stored.tzinfo == UTC and stored.hour == 12
        with pytest.raises(Exception, match="naive datetime"):
            async with db.write() as session:
                await session.execute(insert(counters).values(name="n", value=0, at=datetime(2026, 1, 1)))
    finally:
        await db.close()


@pytest.mark.parametrize("where", ["file", "memory"])
async def test_run_read_sees_committed_writes_and_cannot_write(
    tmp_path: Path, migrations: Path, where: str
) -> None:
    """A whole read in one call: committed rows (types processed: UTC times), never the
    uncommitted ones of an open write, and no writing through it."""
    db = Database(f"sqlite:///{tmp_path / 'x.db'}" if where == "file" else "sqlite:///:memory:")
    try:
        await Migrator(db, [_spec(migrations)]).upgrade()
        at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
        async with db.write() as session:
            await session.execute(insert(counters).values(name="a", value=1, at=at))

        def read(session: Any) -> list[tuple[str, int, datetime]]:
            return [tuple(row) for row in session.execute(select(counters).order_by(counters.c.name))]

        assert await db.run_read(read) == [("a", 1, at)]
        if where == "file":  # one connection in memory: the write would hold it
            async with db.write() as session:
                await session.execute(insert(counters).values(name="b", value=2))
                assert await db.run_read(read) == [("a", 1, at)]
            assert [row[0] for row in await db.run_read(read)] == ["a", "b"]
            with pytest.raises(Exception, match="readonly"):
                await db.run_read(lambda session: session.execute(counters.delete()))
    finally:
        await db.close()


def _spec(location: Path) -> Any:
    from mnemogate.core.contracts import MigrationSpec

    return MigrationSpec("dbtest", str(location), metadata)


async def test_each_plugin_migrates_its_own_branch_and_can_be_switched_off(
    make_app: Any, migrations: Path
) -> None:
    app = make_app(plugins=[migrating_plugin(migrations)])
    async with running(app):
        db = app.state.registry.db
        assert {"auth_api_keys", "dbtest_counters"} <= set(await table_names(db))
        current = await Migrator(db, app.state.registry.migrations).current()
        assert current["auth"] == "auth_0001" and current["dbtest"] == "dbtest_0001"
    # Later the plugin is uninstalled: the other plugins still start on the same database.
    async with running(make_app()) as client:
        assert (await client.get("/api/v1/health/ready")).status_code == 200


@pytest.mark.postgres
async def test_app_on_postgresql(make_client: Any, postgres_url: str, migrations: Path) -> None:
    async with make_client(database_url=postgres_url, plugins=[migrating_plugin(migrations)]) as client:
        ready = await client.get("/api/v1/health/ready")
        assert ready.status_code == 200
        health = (await client.get("/api/v1/health")).json()
        assert health["checks"]["database"] == {"ok": True, "detail": "postgresql"}
        created = await client.post("/api/v1/keys", json={"name": "pg", "scopes": ["admin"]})
        assert created.status_code == 201
        key = created.json()["key"]
        listed = await client.get("/api/v1/keys", headers={"Authorization": f"Bearer {key}"})
        assert [k["name"] for k in listed.json()["items"]] == ["pg"]
        stats = (await client.get("/api/v1/stats", headers={"X-API-Key": key})).json()
        assert stats["database_dialect"] == "postgresql" and stats["database_bytes"] > 0
    db = Database(postgres_url)
    try:
        assert {"auth_api_keys", "dbtest_counters"} <= set(await table_names(db))
        async with db.read() as session:
            tables = (
                await session.execute(
                    text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'mnemogate_version_%'")
                )
            ).scalars()
            assert set(tables) >= {"mnemogate_version_auth", "mnemogate_version_dbtest"}
    finally:
        await db.close()


@pytest.mark.postgres
async def test_concurrent_instances_migrate_postgresql_once(postgres_url: str, migrations: Path) -> None:
    """Two instances starting together serialise on an advisory lock instead of racing."""
    databases = [Database(postgres_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(Migrator(db, [_spec(migrations)]).upgrade() for db in databases))
        assert all(r == {"dbtest": "dbtest_0001"} for r in results)
    finally:
        for db in databases:
            await db.close()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_db_commands(
    backend: str, request: pytest.FixtureRequest, clean_environment: None, tmp_path: Path
) -> None:
    url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'cli.db'}"
    )
    settings = isolated_settings(tmp_path / "data", database_url=url)
    cli = build_cli(settings, PluginHost.build(load_plugins=[]))
    runner = CliRunner()

    before = orjson.loads(runner.invoke(cli, ["db", "current"]).output)
    assert before["plugins"]["auth"] == {"revision": None, "pending": True}
    assert "password" not in before["database"]

    upgraded = runner.invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert orjson.loads(upgraded.output)["auth"] == "auth_0001"  # and every other built-in's head
    after = orjson.loads(runner.invoke(cli, ["db", "current"]).output)
    assert after["plugins"]["auth"] == {"revision": "auth_0001", "pending": False}

    history = orjson.loads(runner.invoke(cli, ["db", "history", "--plugin", "auth"]).output)
    assert history == [
        {"plugin": "auth", "revision": "auth_0001", "down_revision": None, "message": "api keys"}
    ]
    unknown = runner.invoke(cli, ["db", "upgrade", "--plugin", "nope"])
    assert unknown.exit_code != 0


def test_revision_command_extends_a_plugins_branch(
    clean_environment: None, tmp_path: Path, migrations: Path
) -> None:
    settings = isolated_settings(tmp_path / "data")
    host = PluginHost.build(load_plugins=[], extra_plugins=[migrating_plugin(migrations)])
    cli = build_cli(settings, host)
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    made = runner.invoke(cli, ["db", "revision", "dbtest", "-m", "add colour"])
    assert made.exit_code == 0, made.output
    files = sorted(p.name for p in migrations.glob("*.py"))
    assert len(files) == 2 and any("add_colour" in name for name in files)
    history = orjson.loads(runner.invoke(cli, ["db", "history", "--plugin", "dbtest"]).output)
    assert [h["message"] for h in history] == ["add colour", "counters"]
    assert history[0]["down_revision"] == "dbtest_0001"


def test_new_ids_are_time_ordered_uuids() -> None:
    import time as clock
    import uuid

    from mnemogate.core.db import new_id

    first = new_id()
    clock.sleep(0.002)
    later = [new_id() for _ in range(100)]
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in [first, *later])
    assert all(first < i for i in later) and len(set(later)) == 100
