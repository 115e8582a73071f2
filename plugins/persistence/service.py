"""Checkpoints, backups, restore, and moving a tenant's memories in and out as JSONL.

SQLite keeps recent writes in its write-ahead log until a checkpoint folds them into the
database file; checkpoints run on a timer, on demand and at shutdown, and each one is recorded.
A backup is ``VACUUM INTO`` a new file (one read snapshot: writers keep going), checked with
``quick_check`` and published by rename with a JSON record beside it. A restore copies a
backup's pages into the live database with SQLite's backup API as one write transaction:
readers see the old contents or the new ones, never a mix, the server keeps serving, and a crash
midway leaves the old contents. Afterwards every plugin is told (``database_replaced``) to drop
what it derived from the old contents. PostgreSQL keeps its own write-ahead log and is backed up
with its own tools (pg_dump / pg_basebackup); there these operations answer 409 saying so.
Export and import go through the memory types (``PortableMemory``), so they work on every
database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy import select, text

from mnemogate.core.contracts import PortableMemory, utcnow
from mnemogate.core.db import Database, Migrator, new_id
from mnemogate.core.errors import Conflict, NotFound, Unavailable
from mnemogate.core.pagination import Page, newest_first, page_of_rows, page_of_sequence
from mnemogate.core.registry import Registry
from mnemogate.plugins.persistence.models import (
    Backup,
    Checkpoint,
    CheckpointReason,
    CheckpointRow,
    ImportResult,
    Integrity,
    LineError,
    Restored,
    Status,
)
from mnemogate.plugins.persistence.settings import PersistenceSettings

log = logging.getLogger("mnemogate.persistence")

SERVICE = "persistence"
EXPORT_FORMAT = "mnemogate.memories"
EXPORT_VERSION = 1
BACKUP_SUFFIX = ".sqlite3"
REPORTED_ERRORS = 100
VERSION_TABLE_PREFIX = "mnemogate_version_"
POSTGRES_ADVICE = (
    "the database is PostgreSQL, which checkpoints its own write-ahead log; back it up and restore "
    "it with pg_dump / pg_restore (or pg_basebackup), and use export/import to move memories"
)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _checkpoint(row: CheckpointRow) -> Checkpoint:
    return Checkpoint(
        id=row.id,
        reason=row.reason,  # type: ignore[arg-type]
        started_at=row.started_at,
        duration_ms=row.duration_ms,
        busy=row.busy,
        wal_frames=row.wal_frames,
        checkpointed_frames=row.checkpointed_frames,
        wal_bytes_before=row.wal_bytes_before,
        wal_bytes_after=row.wal_bytes_after,
    )


def inspect_file(connection: sqlite3.Connection) -> tuple[str, dict[str, int], dict[str, str | None]]:
    """(quick_check result, rows per table, each plugin's recorded schema revision)."""
    check = "; ".join(str(r[0]) for r in connection.execute("PRAGMA quick_check").fetchall())
    names = [
        r[0]
        for r in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    tables: dict[str, int] = {}
    revisions: dict[str, str | None] = {}
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        if name.startswith(VERSION_TABLE_PREFIX):
            found = sorted(r[0] for r in connection.execute(f"SELECT version_num FROM {quoted}"))
            revisions[name.removeprefix(VERSION_TABLE_PREFIX)] = ",".join(found) or None
        else:
            tables[name] = int(connection.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])
    return check, tables, revisions


class PersistenceService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.integrity = Integrity(ok=None, result="not checked", checked_at=None)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def settings(self) -> PersistenceSettings:
        return self.registry.plugin_settings(SERVICE)

    @property
    def db(self) -> Database:
        return self.registry.db

    @property
    def backup_dir(self) -> Path:
        return self.settings.backup_dir or self.registry.settings.data_dir / "backups"

    @property
    def sqlite_file(self) -> Path | None:
        return self.db.path if self.db.dialect == "sqlite" else None

    def _require_sqlite(self) -> Path:
        if self.sqlite_file is None:
            if self.db.dialect == "postgresql":
                raise Conflict(POSTGRES_ADVICE, code="unsupported_database")
            raise Conflict(
                "the database lives in memory: there is no file to checkpoint, back up or restore",
                code="unsupported_database",
            )
        return self.sqlite_file

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.sqlite_file is None:
            return
        self._spawn(self._check_integrity())
        if self.settings.checkpoint_interval_seconds > 0:
            self._spawn(self._periodic())

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.sqlite_file is None:
            return
        try:
            done = await self.checkpoint("shutdown")
            log.info("final checkpoint: %d frames folded into the database", done.checkpointed_frames)
        except Exception as exc:
            log.error("final checkpoint failed: %s", type(exc).__name__)

    async def _check_integrity(self) -> None:
        """``PRAGMA quick_check`` on its own connection, off the event loop: a large database
        takes a while, and start-up should not wait for it."""
        path = self._require_sqlite()
        self.integrity = Integrity(ok=None, result="checking", checked_at=None)

        def check() -> str:
            connection = sqlite3.connect(path, isolation_level=None)
            try:
                connection.execute("PRAGMA busy_timeout=10000")
                return "; ".join(str(r[0]) for r in connection.execute("PRAGMA quick_check").fetchall())
            finally:
                connection.close()

        result = await asyncio.to_thread(check)
        self.integrity = Integrity(ok=result == "ok", result=result, checked_at=utcnow())
        if result == "ok":
            log.info("database integrity check: ok")
        else:
            log.error("database integrity check FAILED: %s", result[:500])

    async def _periodic(self) -> None:
        interval = self.settings.checkpoint_interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.checkpoint("periodic")
            except Exception as exc:
                log.warning("periodic checkpoint failed: %s", type(exc).__name__)

    # -- status and checkpoints ----------------------------------------------------------------

    async def status(self) -> Status:
        last = await self._last_checkpoint()
        backups = len(await asyncio.to_thread(self._backups))
        interval = self.settings.checkpoint_interval_seconds
        if self.db.dialect == "postgresql":
            async with self.db.read() as session:
                size = (await session.execute(text("SELECT pg_database_size(current_database())"))).scalar()
                recovery = (await session.execute(text("SELECT pg_is_in_recovery()"))).scalar()
            return Status(
                database="postgresql",
                mode="standby" if recovery else "primary",
                synchronous=None,
                database_bytes=int(size or 0),
                wal_bytes=None,
                page_size=None,
                free_pages=None,
                last_checkpoint=last,
                checkpoint_interval_seconds=0,
                integrity=self.integrity,
                backups=backups,
                supports_backup=False,
            )
        async with self.db.read() as session:
            pragmas = {}
            for name in ("journal_mode", "synchronous", "page_size", "page_count", "freelist_count"):
                pragmas[name] = (await session.execute(text(f"PRAGMA {name}"))).scalar()
        path = self.sqlite_file
        synchronous = {0: "off", 1: "normal", 2: "full", 3: "extra"}.get(pragmas["synchronous"])
        return Status(
            database="sqlite",
            mode=str(pragmas["journal_mode"]),
            synchronous=synchronous,
            database_bytes=int(pragmas["page_size"]) * int(pragmas["page_count"]),
            wal_bytes=_size(path.with_name(path.name + "-wal")) if path is not None else None,
            page_size=int(pragmas["page_size"]),
            free_pages=int(pragmas["freelist_count"]),
            last_checkpoint=last,
            checkpoint_interval_seconds=interval if path is not None else 0,
            integrity=self.integrity,
            backups=backups,
            supports_backup=path is not None,
        )

    async def _last_checkpoint(self) -> Checkpoint | None:
        async with self.db.read() as session:
            row = await session.scalar(
                select(CheckpointRow)
                .order_by(CheckpointRow.started_at.desc(), CheckpointRow.id.desc())
                .limit(1)
            )
        return None if row is None else _checkpoint(row)

    async def checkpoint(self, reason: CheckpointReason = "manual") -> Checkpoint:
        self._require_sqlite()
        async with self._lock:
            return await self._checkpoint_now(reason)

    async def _checkpoint_now(self, reason: CheckpointReason) -> Checkpoint:
        path = self._require_sqlite()
        wal = path.with_name(path.name + "-wal")
        before = _size(wal)
        started_at, clock = utcnow(), time.perf_counter()
        result = await self.db.checkpoint()
        assert result is not None
        busy, frames, done = result
        row = CheckpointRow(
            id=new_id(),
            reason=reason,
            started_at=started_at,
            duration_ms=(time.perf_counter() - clock) * 1000,
            busy=busy,
            wal_frames=max(frames, 0),
            checkpointed_frames=max(done, 0),
            wal_bytes_before=before,
            wal_bytes_after=_size(wal),
        )
        async with self.db.write() as session:
            session.add(row)
        return _checkpoint(row)

    async def checkpoints(self, limit: int, cursor: str | None) -> Page[Checkpoint]:
        query = newest_first(
            select(CheckpointRow), CheckpointRow.started_at, CheckpointRow.id, limit=limit, cursor=cursor
        )
        async with self.db.read() as session:
            rows = list(await session.scalars(query))
        return page_of_rows(rows, limit, _checkpoint, lambda r: (r.started_at, r.id))

    # -- backups -------------------------------------------------------------------------------

    async def backup(self) -> Backup:
        source = self._require_sqlite()
        async with self._lock:
            made = await asyncio.to_thread(self._make_backup, source, new_id())
        await asyncio.to_thread(self._prune)
        log.info("backup %s made: %d bytes", made.id, made.bytes)
        return made

    def _make_backup(self, source: Path, backup_id: str) -> Backup:
        directory = self.backup_dir
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / f".{backup_id}.partial"
        created_at = utcnow()
        try:
            connection = sqlite3.connect(source, isolation_level=None)
            try:
                connection.execute("PRAGMA busy_timeout=10000")
                # One read snapshot of the live database; writers are not blocked meanwhile.
                connection.execute("VACUUM INTO ?", (str(partial),))
            finally:
                connection.close()
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                # A backup is one self-contained file: no write-ahead log beside it.
                copy.execute("PRAGMA journal_mode=DELETE")
                check, tables, revisions = inspect_file(copy)
            finally:
                copy.close()
            if check != "ok":
                raise Unavailable("the backup failed its integrity check; the database may be damaged")
            record = Backup(
                id=backup_id,
                created_at=created_at,
                bytes=_size(partial),
                integrity=check,
                tables=tables,
                revisions=revisions,
            )
            _fsync(partial)
            os.replace(partial, directory / f"{backup_id}{BACKUP_SUFFIX}")
            described = directory / f".{backup_id}.json.partial"
            described.write_bytes(record.model_dump_json(indent=2).encode())
            _fsync(described)
            os.replace(described, directory / f"{backup_id}.json")
            _fsync(directory)
            return record
        finally:
            partial.unlink(missing_ok=True)

    def _backups(self) -> list[Backup]:
        directory = self.backup_dir
        if not directory.is_dir():
            return []
        found = []
        for described in directory.glob("*.json"):
            if not (directory / f"{described.stem}{BACKUP_SUFFIX}").exists():
                continue
            try:
                found.append(Backup.model_validate_json(described.read_bytes()))
            except ValueError:
                log.warning("unreadable backup record %s ignored", described.name)
        found.sort(key=lambda b: (b.created_at, b.id), reverse=True)
        return found

    def _prune(self) -> None:
        keep = self.settings.keep_backups
        if keep == 0:
            return
        for old in self._backups()[keep:]:
            (self.backup_dir / f"{old.id}{BACKUP_SUFFIX}").unlink(missing_ok=True)
            (self.backup_dir / f"{old.id}.json").unlink(missing_ok=True)

    async def backups(self, limit: int, cursor: str | None) -> Page[Backup]:
        return page_of_sequence(await asyncio.to_thread(self._backups), limit, cursor)

    # -- restore -------------------------------------------------------------------------------

    async def restore(self, backup_id: str, app: FastAPI) -> Restored:
        live = self._require_sqlite()
        backup = next((b for b in await asyncio.to_thread(self._backups) if b.id == backup_id), None)
        if backup is None:
            raise NotFound(f"no backup with id {backup_id}")
        migrator = Migrator(self.db, self.registry.migrations)
        self._check_revisions(backup, migrator)
        async with self._lock:
            clock = time.perf_counter()
            file = self.backup_dir / f"{backup.id}{BACKUP_SUFFIX}"
            check, tables = await asyncio.to_thread(self._copy_into, file, live)
            if self.registry.settings.auto_migrate:
                # A backup from before an upgrade gets the newer plugins' schema.
                await migrator.upgrade()
            await self.registry.host.broadcast("database_replaced", app=app)
            await self._checkpoint_now("restore")
            duration = (time.perf_counter() - clock) * 1000
        log.warning("database restored from backup %s in %.0f ms", backup.id, duration)
        return Restored(backup=backup, duration_ms=duration, tables=tables, integrity=check)

    def _check_revisions(self, backup: Backup, migrator: Migrator) -> None:
        """Refuse a backup whose schema this installation does not know (made by a newer one)."""
        enabled = {spec.plugin for spec in self.registry.migrations}
        for plugin, recorded in backup.revisions.items():
            if plugin not in enabled or recorded is None:
                continue
            known = {row["revision"] for row in migrator.history(plugin)}
            unknown = sorted(set(recorded.split(",")) - known)
            if unknown:
                raise Conflict(
                    f"backup {backup.id} has schema revision {', '.join(unknown)} of plugin {plugin!r}, "
                    "which this installation does not know (it was made by a newer version)",
                    code="incompatible_backup",
                )

    @staticmethod
    def _copy_into(file: Path, live: Path) -> tuple[str, dict[str, int]]:
        source = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        target = sqlite3.connect(live, isolation_level=None)
        try:
            check = source.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise Conflict(f"the backup failed its integrity check: {check}", code="damaged_backup")
            target.execute("PRAGMA busy_timeout=10000")
            # All pages in one step: one write transaction on the live database.
            source.backup(target)
            result, tables, _ = inspect_file(target)
            return result, tables
        finally:
            source.close()
            target.close()

    # -- export and import ---------------------------------------------------------------------

    def portable(self) -> dict[str, PortableMemory]:
        """Record type -> the memory type that exports and imports it."""
        owners: dict[str, PortableMemory] = {}
        for memory_type in self.registry.memory_types.values():
            if isinstance(memory_type, PortableMemory):
                for record in memory_type.record_types:
                    owners[record] = memory_type
        return owners

    async def export(self, tenant: str) -> AsyncIterator[bytes]:
        owners = self.portable()
        header = {
            "record": "header",
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "tenant": tenant,
            "exported_at": utcnow().isoformat().replace("+00:00", "Z"),
            "records": sorted(owners),
        }
        yield orjson.dumps(header) + b"\n"
        for memory_type in dict.fromkeys(owners.values()):
            async for batch in memory_type.export_records(tenant):
                yield b"".join(orjson.dumps(record) + b"\n" for record in batch)

    async def import_lines(self, tenant: str, chunks: AsyncIterator[bytes]) -> ImportResult:
        owners = self.portable()
        result = ImportResult(lines=0, imported={}, rejected=0, errors=[])
        batch: list[tuple[int, dict[str, Any]]] = []
        owner: PortableMemory | None = None

        def reject(line: int, message: str) -> None:
            result.rejected += 1
            if len(result.errors) < REPORTED_ERRORS:
                result.errors.append(LineError(line=line, message=message))

        async def flush() -> None:
            if not batch or owner is None:
                return
            errors = await owner.import_records(tenant, [record for _, record in batch])
            for (line, record), error in zip(batch, errors, strict=True):
                if error is None:
                    result.imported[record["record"]] = result.imported.get(record["record"], 0) + 1
                else:
                    reject(line, error)
            batch.clear()

        async for number, line in self._lines(chunks):
            result.lines = number
            if isinstance(line, LineError):
                reject(number, line.message)
                continue
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                reject(number, "not a JSON object")
                continue
            kind = record.get("record") if isinstance(record, dict) else None
            if kind == "header":
                if record.get("format") != EXPORT_FORMAT or record.get("version") != EXPORT_VERSION:
                    reject(number, f"unsupported header (expected format {EXPORT_FORMAT} version 1)")
                continue
            if not isinstance(kind, str) or kind not in owners:
                known = ", ".join(sorted(owners)) or "none"
                reject(number, f'unknown or missing "record" type (known: {known})')
                continue
            if owners[kind] is not owner or len(batch) >= self.settings.import_batch:
                await flush()
                owner = owners[kind]
            batch.append((number, record))
        await flush()
        result.errors.sort(key=lambda error: error.line)
        return result

    async def _lines(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes | LineError]]:
        """Numbered lines of a streamed body; a line longer than the limit becomes an error."""
        limit = self.settings.max_import_line_bytes
        too_long = f"line longer than {limit} bytes"
        pending = b""  # the start of a line that continues in the next chunk
        number = 0
        skipping = False
        async for chunk in chunks:
            data = pending + chunk if pending else chunk
            start = 0
            while (end := data.find(b"\n", start)) >= 0:
                number += 1
                if skipping or end - start > limit:
                    skipping = False
                    yield number, LineError(line=number, message=too_long)
                else:
                    yield number, data[start:end]
                start = end + 1
            pending = data[start:]
            if len(pending) > limit:
                skipping, pending = True, b""
        if skipping:
            yield number + 1, LineError(line=number + 1, message=too_long)
        elif pending.strip():
            yield number + 1, pending


async def start(registry: Registry) -> PersistenceService:
    service = PersistenceService(registry)
    await service.start()
    registry.provide(SERVICE, service, plugin=SERVICE)
    return service
