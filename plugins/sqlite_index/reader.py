"""Searches read the index's tables through connections of their own, each read in one
hand-off to a worker thread.

Through the async driver, every statement, fetch, BEGIN and ROLLBACK is a hand-off between the
event loop and the driver's thread, and on a busy machine each one waits for a core: a search's
few reads cost milliseconds that way. Here a whole read (several statements in one snapshot)
runs in a single hand-off, with the event loop free meanwhile. Writes still go through the
caller's session, in its transaction. A database in memory has no second connection, so its
reads run on the engine's own connection instead.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mnemogate.core.db import Database

T = TypeVar("T")
Work = Callable[[Any], T]


class Reader:
    def __init__(self, db: Database, threads: int = 2) -> None:
        self.db = db
        self.local = threading.local()
        self.connections: list[sqlite3.Connection] = []
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="memidx-read") if db.path else None

    async def run(self, work: Callable[[Any], T]) -> T:
        """``work(connection)`` in one read snapshot; the connection has ``cursor()``."""
        if self.pool is None:
            async with self.db.engine.connect() as connection:
                return await connection.run_sync(lambda sync: work(sync.connection.dbapi_connection))
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._in_thread, work)

    def _in_thread(self, work: Callable[[Any], T]) -> T:
        connection = self._connection()
        connection.execute("BEGIN")
        try:
            return work(connection)
        finally:
            connection.execute("ROLLBACK")

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self.local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.db.path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA query_only=1")
            connection.execute("PRAGMA busy_timeout=10000")
            self.local.connection = connection
            with self.lock:
                self.connections.append(connection)
        return connection

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        for connection in self.connections:
            connection.close()
        self.connections.clear()


def fetch(connection: Any, sql: str, params: Any = ()) -> list[Any]:
    cursor = connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def marks(count: int) -> str:
    return ", ".join("?" * count)
