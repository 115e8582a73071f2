"""The database: one async SQLAlchemy engine from one URL, and the migration runner.

SQLite (the embedded default, a file in the data directory) runs in WAL mode with real
transactions; writes take the write lock up front (``BEGIN IMMEDIATE``) so concurrent writers
wait instead of failing. PostgreSQL is chosen by URL. Each plugin keeps its own Alembic
revisions and its own version table; ``Migrator`` upgrades every enabled plugin's branch.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import importlib.util
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from mnemogate.core.contracts import MigrationSpec
from mnemogate.core.errors import StartupError

log = logging.getLogger("mnemogate.db")

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
}
_BEGIN_OPTION = "mnemogate_sqlite_begin"
READ_THREADS = 2
T = TypeVar("T")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> str:
    """A new UUID, version 7 (RFC 9562): a millisecond timestamp, then random bits. Ids made
    together sort together, so inserts land at the end of B-tree indexes instead of on random
    pages, which keeps large tables fast to write."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (millis & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | (rand >> 68) << 64
        | 0b10 << 62
        | rand & ((1 << 62) - 1)
    )
    # What str(uuid.UUID(int=value)) gives, at a fraction of the cost (batches make thousands).
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def async_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StartupError("the database URL cannot be parsed") from None
    return parsed.set(drivername=_ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername))


class Database:
    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = async_url(url)
        self.dialect = self.url.get_backend_name()
        self.path: Path | None = None
        options: dict[str, Any] = {}
        if self.dialect == "sqlite":
            database = self.url.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                self.path = Path(database).expanduser().resolve()
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.url = self.url.set(database=str(self.path))
            else:
                options["poolclass"] = StaticPool
                options["connect_args"] = {"check_same_thread": False}
        elif self.dialect == "postgresql":
            options.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            _configure_sqlite_connections(self.engine.sync_engine, sqlite_synchronous)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._sqlite_synchronous = sqlite_synchronous
        self._read_engine: Engine | None = None
        self._read_pool: ThreadPoolExecutor | None = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; its transaction is rolled back at the end."""
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits as one transaction when the block exits cleanly."""
        async with self.sessionmaker() as session:
            if self.dialect == "sqlite":
                await session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE"})
            async with session.begin() if not session.in_transaction() else _joined(session):
                yield session

    async def run_read(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` with a synchronous session, in one read snapshot (rolled back after);
        ``work`` must turn what it loads into plain values before it returns.

        Through the async SQLite driver every BEGIN, statement, fetch and ROLLBACK is a hand-off
        between the event loop and the driver's thread, and on a busy machine each one waits for
        a core: a hot read path (recall) pays milliseconds for that alone. On an SQLite file the
        whole read runs here in one hand-off to a reader thread with connections of its own
        (WAL: readers never wait for the writer), the event loop free meanwhile. Elsewhere it
        runs through the async session (``run_sync``)."""
        if self.path is None:
            async with self.sessionmaker() as session:
                return await session.run_sync(work)
        if self._read_pool is None:
            self._read_engine = create_engine(
                self.url.set(drivername="sqlite+pysqlite"),
                pool_size=READ_THREADS,
                connect_args={"check_same_thread": False},
            )
            _configure_sqlite_connections(self._read_engine, self._sqlite_synchronous, read_only=True)
            self._read_pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="db-read")
        return await asyncio.get_running_loop().run_in_executor(self._read_pool, self._read_sync, work)

    def _read_sync(self, work: Callable[[Session], T]) -> T:
        with Session(self._read_engine) as session:
            return work(session)

    async def ping(self, wait_seconds: float = 2.0) -> bool:
        try:
            async with asyncio.timeout(wait_seconds), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:
            log.warning("database ping failed: %s", type(exc).__name__)
            return False

    async def checkpoint(self) -> tuple[bool, int, int] | None:
        """Fold the SQLite write-ahead log into the database file and truncate it; answers
        (busy, frames in the log, frames folded in) as SQLite reports them (None elsewhere)."""
        if self.dialect != "sqlite" or self.path is None:
            return None
        async with self.engine.connect() as conn:
            # PASSIVE reports the log's frames and how many were folded in; TRUNCATE then
            # empties the log file (and reports zeros once it has).
            _, frames, done = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")).one()
            busy, _, _ = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
        return bool(busy), int(frames), int(done)

    async def close(self) -> None:
        if self._read_pool is not None and self._read_engine is not None:
            await asyncio.to_thread(self._read_pool.shutdown, wait=True)
            self._read_engine.dispose()
            self._read_pool = self._read_engine = None
        try:
            await self.checkpoint()
        finally:
            await self.engine.dispose()

    def describe(self) -> str:
        """The URL with any password hidden."""
        return self.url.render_as_string(hide_password=True)


@asynccontextmanager
async def _joined(session: AsyncSession) -> AsyncIterator[None]:
    try:
        yield
    except BaseException:
        await session.rollback()
        raise
    await session.commit()


def _configure_sqlite_connections(engine: Engine, synchronous: str, *, read_only: bool = False) -> None:
    # The sqlite3 module's implicit transactions do not cover every statement; take over BEGIN
    # so a SQLAlchemy transaction is a real SQLite transaction (SQLAlchemy's documented recipe).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode loses nothing when the process dies; FULL also survives power loss.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        if read_only:
            cursor.execute("PRAGMA query_only=1")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


# -- migrations ----------------------------------------------------------------------------------


def alembic_directory() -> str:
    spec = importlib.util.find_spec("mnemogate.alembic")
    if spec is None or not spec.submodule_search_locations:
        raise StartupError("the mnemogate.alembic package (env.py) is missing from the installation")
    return next(iter(spec.submodule_search_locations))


class Migrator:
    """Alembic over every enabled plugin: each plugin its own branch and version table."""

    def __init__(self, db: Database, specs: Sequence[MigrationSpec]) -> None:
        self.db = db
        self.specs = {spec.plugin: spec for spec in specs}

    def config(self, spec: MigrationSpec, connection: Connection | None = None) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", alembic_directory())
        cfg.set_main_option("version_locations", spec.version_location)
        cfg.set_main_option("path_separator", "os")
        cfg.attributes.update(version_table=spec.version_table, metadata=spec.metadata, plugin=spec.plugin)
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg

    def _select(self, plugin: str | None) -> list[MigrationSpec]:
        if plugin is None:
            return list(self.specs.values())
        if plugin not in self.specs:
            raise StartupError(f"plugin {plugin!r} is not enabled or has no migrations")
        return [self.specs[plugin]]

    async def upgrade(self, plugin: str | None = None, revision: str = "heads") -> dict[str, str | None]:
        selected = self._select(plugin)
        if revision == "heads":
            # Importing Alembic costs about a third of a second; skip it when nothing is due.
            current = await self.current()
            selected = [spec for spec in selected if _revisions(current[spec.plugin]) != script_heads(spec)]
            if not selected:
                return current
        from alembic import command

        async with self._locked() as conn:
            for spec in selected:
                try:
                    await conn.run_sync(lambda sync, s=spec: command.upgrade(self.config(s, sync), revision))
                    await conn.commit()
                except Exception as exc:
                    await conn.rollback()
                    raise StartupError(
                        f"plugin {spec.plugin!r}: database migration failed: {type(exc).__name__}: {exc}"
                    ) from exc
        return await self.current()

    async def current(self) -> dict[str, str | None]:
        """Each plugin's revision as recorded in its version table (None before the first)."""
        heads: dict[str, str | None] = {}
        async with self.db.engine.connect() as conn:
            tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            for spec in self.specs.values():
                rows: list[str] = []
                if spec.version_table in tables:
                    rows = list(
                        (
                            await conn.execute(text(f'SELECT version_num FROM "{spec.version_table}"'))
                        ).scalars()
                    )
                heads[spec.plugin] = ",".join(sorted(rows)) or None
        return heads

    def history(self, plugin: str | None = None) -> list[dict[str, Any]]:
        from alembic.script import ScriptDirectory

        rows = []
        for spec in self._select(plugin):
            script = ScriptDirectory.from_config(self.config(spec))
            for rev in script.walk_revisions():
                rows.append(
                    {
                        "plugin": spec.plugin,
                        "revision": rev.revision,
                        "down_revision": rev.down_revision,
                        "message": (rev.doc or "").strip(),
                    }
                )
        return rows

    async def heads_pending(self) -> dict[str, bool]:
        """Per plugin: does the database lag behind the plugin's newest revision?"""
        current = await self.current()
        return {
            spec.plugin: _revisions(current[spec.plugin]) != script_heads(spec)
            for spec in self.specs.values()
        }

    async def revision(self, plugin: str, message: str, *, autogenerate: bool = False) -> str:
        from alembic.script import ScriptDirectory

        from alembic import command

        spec = self._select(plugin)[0]
        if autogenerate and spec.metadata is None:
            raise StartupError(f"plugin {plugin!r} registered no metadata; cannot autogenerate")
        heads = ScriptDirectory.from_config(self.config(spec)).get_heads()
        # The first revision of a plugin starts its branch; later ones extend its head.
        head, branch_label = (heads[0], None) if heads else ("base", plugin)
        async with self.db.engine.connect() as conn:
            result = await conn.run_sync(
                lambda sync: command.revision(
                    self.config(spec, sync),
                    message=message,
                    autogenerate=autogenerate,
                    head=head,
                    branch_label=branch_label,
                    version_path=spec.version_location,
                )
            )
        scripts = result if isinstance(result, list) else [result]
        return ", ".join(s.path for s in scripts if s is not None)

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[AsyncConnection]:
        """One connection for all upgrades; on PostgreSQL an advisory lock keeps concurrent
        instances from migrating at the same time."""
        async with self.db.engine.connect() as conn:
            if self.db.dialect != "postgresql":
                yield conn
                return
            key = int.from_bytes(hashlib.sha256(b"mnemogate-migrations").digest()[:8], "big", signed=True)
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            await conn.commit()
            try:
                yield conn
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await conn.commit()


def _revisions(recorded: str | None) -> set[str]:
    return set((recorded or "").split(",")) - {""}


def script_heads(spec: MigrationSpec) -> set[str]:
    """The newest revisions of a plugin's branch, read from its revision files without importing
    Alembic: every ``revision`` that no file names as its ``down_revision``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in Path(spec.version_location).glob("*.py"):
        if path.name.startswith("__"):
            continue
        for node in ast.parse(path.read_text()).body:
            target = (
                node.target
                if isinstance(node, ast.AnnAssign)
                else (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
            )
            if not isinstance(target, ast.Name) or node.value is None:
                continue
            if target.id == "revision":
                revisions.add(ast.literal_eval(node.value))
            elif target.id == "down_revision":
                value = ast.literal_eval(node.value)
                parents.update([value] if isinstance(value, str) else list(value or ()))
    return revisions - parents
