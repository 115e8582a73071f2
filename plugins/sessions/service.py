"""Sessions and the request log.

Which session a request belongs to is decided in memory (``resolve``), on the request path;
what that changes (new sessions, last use, the active session) and the request log itself are
written in batches by a background task (``flush``), one transaction per batch, so a chat
request never waits on the database. Reads flush first, so they see every request that was
answered before them. A crash loses at most ``flush_interval_seconds`` of log records; API
writes (create, activate, toggle, delete) are written at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiosqlite
import orjson
from sqlalchemy import Select, and_, delete, exists, false, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from mnemogate.core import tokens
from mnemogate.core.contracts import ChatContext, utcnow
from mnemogate.core.db import Database
from mnemogate.core.errors import BadRequest, NotFound
from mnemogate.core.events import Events
from mnemogate.core.flusher import Flusher
from mnemogate.core.pagination import Page, newest_first, page_of_rows
from mnemogate.plugins.sessions.models import (
    AutoStatus,
    DeleteResult,
    Diagnostic,
    Inconsistency,
    RequestRow,
    SessionOut,
    SessionRow,
    TenantStateRow,
    VacuumResult,
)
from mnemogate.plugins.sessions.settings import SessionsSettings

log = logging.getLogger("mnemogate.sessions")

SERVICE = "sessions"
EVENTS_CHANNEL = "events"
NAMED_SESSIONS = uuid.UUID("4f0c7a51-6b0e-4c7e-9a57-2f1f3c5d8e10")
MAX_PENDING = 100_000
REQUEST_COLUMNS = tuple(c.name for c in RequestRow.__table__.columns if c.name != "tenant")
ERROR_LENGTH = 500
SQLITE_VACUUM = (
    "PRAGMA busy_timeout=10000",
    "PRAGMA wal_checkpoint(TRUNCATE)",
    "VACUUM",
    "PRAGMA wal_checkpoint(TRUNCATE)",
)


@dataclass(slots=True)
class TenantState:
    auto: bool
    active_id: str | None = None
    fingerprint: str | None = None
    last_seen: float = 0.0


class SharedStateStore(Protocol):
    """Tenant states shared between instances (``register_session_state_stores``)."""

    async def load(self) -> dict[str, dict[str, Any]]: ...
    async def save(self, tenant: str, state: dict[str, Any]) -> None: ...
    async def watch(self, on_change: Callable[[str, dict[str, Any]], None]) -> None: ...
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Filters:
    """What exports and deletions select by: a time range, a session, a model."""

    since: datetime | None = None
    until: datetime | None = None
    session_id: str | None = None
    model: str | None = None


def session_id_for(tenant: str, given: str) -> tuple[str, str | None]:
    """(session id, name) for an ``X-Session-ID``: a UUID is the id itself; any other label
    names a session whose id is derived from it, the same on every call."""
    try:
        return str(uuid.UUID(given)), None
    except ValueError:
        label = given[:200]
        return str(uuid.uuid5(NAMED_SESSIONS, f"{tenant}\x00{label}")), label


def fingerprint(body: dict[str, Any]) -> str | None:
    """What identifies a conversation: its first user message (agents resend the history)."""
    messages = body.get("messages") or ()
    first = next((m for m in messages if isinstance(m, dict) and m.get("role") == "user"), None)
    if first is None:
        return None
    return hashlib.blake2b(orjson.dumps(first.get("content")), digest_size=16).hexdigest()


class SessionService:
    def __init__(
        self,
        db: Database,
        events: Events,
        settings: SessionsSettings,
        shared: SharedStateStore | None = None,
    ) -> None:
        self.db = db
        self.events = events
        self.settings = settings
        self.shared = shared
        self.idle_seconds = settings.idle_minutes * 60
        self.states: dict[str, TenantState] = {}
        # pending writes, taken by the next flush
        self._sessions: dict[tuple[str, str], tuple[str | None, datetime]] = {}
        self._dirty_states: set[str] = set()
        self._requests: list[ChatContext] = []
        self._created: list[tuple[str, str]] = []
        self._lock = asyncio.Lock()
        self.flusher = Flusher(self.flush, settings.flush_interval_seconds, "the request log")

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.load_states()
        if self.shared is not None:
            for tenant, shared in (await self.shared.load()).items():
                self._adopt(tenant, shared)
            await self.shared.watch(self._adopt)
        self.flusher.start()

    async def load_states(self) -> None:
        """Each tenant's auto mode and active session, as stored (at start, and after the
        database's contents were replaced)."""
        async with self.db.read() as session:
            rows = (await session.scalars(select(TenantStateRow))).all()
        self.states = {
            row.tenant: TenantState(row.auto_mode, row.active_session_id, row.fingerprint, time.monotonic())
            for row in rows
        }

    def _adopt(self, tenant: str, shared: dict[str, Any]) -> None:
        """Take the state another instance saved (it just served the tenant)."""
        state = self.state_of(tenant)
        state.auto = bool(shared.get("auto", state.auto))
        state.active_id = shared.get("active_id")
        state.fingerprint = shared.get("fingerprint")
        state.last_seen = time.monotonic()

    async def stop(self) -> None:
        await self.flusher.stop()
        if self.shared is not None:
            await self.shared.close()

    # -- the request path (no awaits) ----------------------------------------------------------

    def state_of(self, tenant: str) -> TenantState:
        state = self.states.get(tenant)
        if state is None:
            state = self.states[tenant] = TenantState(self.settings.auto_mode)
        return state

    def resolve(self, ctx: ChatContext) -> None:
        """Put the request in a session: the one ``X-Session-ID`` names, else the tenant's
        active one, which auto mode replaces when the conversation changes or went idle."""
        tenant = ctx.tenant
        now = time.monotonic()
        if ctx.session_id:
            session_id, name = session_id_for(tenant, ctx.session_id)
            self._touch(tenant, session_id, name)
            ctx.session_id = session_id
            return
        state = self.state_of(tenant)
        if state.active_id is None:
            self._start_session(tenant, state, fingerprint(ctx.body) if state.auto else None)
        elif state.auto:
            mark = fingerprint(ctx.body)
            if now - state.last_seen > self.idle_seconds:
                self._start_session(tenant, state, mark)
            elif state.fingerprint is None:
                # A session just created or activated by hand adopts the conversation it gets.
                state.fingerprint = mark
                self._state_changed(tenant)
            elif mark != state.fingerprint:
                self._start_session(tenant, state, mark)
        state.last_seen = now
        self._touch(tenant, state.active_id, None)  # type: ignore[arg-type]
        ctx.session_id = state.active_id

    def _start_session(self, tenant: str, state: TenantState, mark: str | None) -> None:
        state.active_id = str(uuid.uuid4())
        state.fingerprint = mark
        self._state_changed(tenant)
        self._created.append((tenant, state.active_id))

    def _state_changed(self, tenant: str) -> None:
        self._dirty_states.add(tenant)
        if self.shared is not None:
            # Other instances adopt the change as soon as the flusher runs, not at its next tick.
            self.flusher.wake()

    def _touch(self, tenant: str, session_id: str, name: str | None) -> None:
        self._sessions[(tenant, session_id)] = (name, utcnow())

    def record(self, ctx: ChatContext) -> None:
        """Queue a finished exchange for the request log."""
        if not self.settings.log_requests:
            return
        if len(self._requests) >= MAX_PENDING:
            log.error("the request log is %d records behind; dropping a record", MAX_PENDING)
            return
        self._requests.append(ctx)
        if len(self._requests) >= self.settings.flush_batch:
            self.flusher.wake()

    # -- writing -------------------------------------------------------------------------------

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.db.dialect == "postgresql" else sqlite_insert)(table)

    async def flush(self) -> None:
        """Write what the request path queued: sessions, active sessions, log records."""
        async with self._lock:
            sessions, self._sessions = self._sessions, {}
            dirty, self._dirty_states = self._dirty_states, set()
            requests, self._requests = self._requests, []
            if not (sessions or dirty or requests):
                return
            records = [self._record_row(ctx) for ctx in requests]
            try:
                async with self.db.write() as session:
                    if sessions:
                        await self._upsert_sessions(session, sessions)
                    for tenant in dirty:
                        await self._save_state(session, tenant)
                    if records:
                        await session.execute(RequestRow.__table__.insert(), records)
            except BaseException:
                # Keep what was taken so the next flush writes it (newer touches win).
                self._sessions = {**sessions, **self._sessions}
                self._dirty_states |= dirty
                self._requests = requests + self._requests
                raise
        created, self._created = self._created, []
        for tenant, session_id in created:
            await self.events.publish(EVENTS_CHANNEL, "session.created", tenant, {"session_id": session_id})

    async def _upsert_sessions(
        self, session: Any, touched: dict[tuple[str, str], tuple[str | None, datetime]]
    ) -> None:
        insert = self._insert(SessionRow.__table__)
        values = [
            {"tenant": tenant, "id": sid, "name": name, "created_at": at, "last_used_at": at}
            for (tenant, sid), (name, at) in touched.items()
        ]
        statement = insert.values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["tenant", "id"],
            set_={
                "last_used_at": statement.excluded.last_used_at,
                "name": func.coalesce(SessionRow.__table__.c.name, statement.excluded.name),
            },
        )
        await session.execute(statement)

    async def _save_state(self, session: Any, tenant: str) -> None:
        state = self.state_of(tenant)
        if self.shared is not None:
            await self.shared.save(
                tenant, {"auto": state.auto, "active_id": state.active_id, "fingerprint": state.fingerprint}
            )
        values = {
            "tenant": tenant,
            "auto_mode": state.auto,
            "active_session_id": state.active_id,
            "fingerprint": state.fingerprint,
            "updated_at": utcnow(),
        }
        statement = self._insert(TenantStateRow.__table__).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["tenant"], set_={k: v for k, v in values.items() if k != "tenant"}
        )
        await session.execute(statement)

    @staticmethod
    def _record_row(ctx: ChatContext) -> dict[str, Any]:
        usage = ctx.usage
        tokens_in = usage.get("prompt_tokens")
        tokens_out = usage.get("completion_tokens")
        counted = False
        if ctx.response is not None and (tokens_in is None or tokens_out is None):
            counted = True
            if tokens_in is None:
                tokens_in = tokens.count_prompt(ctx.body)
            if tokens_out is None:
                tokens_out = tokens.count_completion(ctx.response)
        cost = None
        if ctx.model_info is not None and tokens_in is not None and tokens_out is not None:
            cost = ctx.model_info.cost(tokens_in, tokens_out)
        error = ctx.error
        return {
            "id": str(uuid.uuid4()),
            "tenant": ctx.tenant,
            "session_id": ctx.session_id,
            "request_id": ctx.request_id,
            "provider": ctx.provider,
            "model": ctx.model,
            "status": ctx.status or 500,
            "stream": ctx.stream,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "tokens_counted": counted,
            "cost_usd": cost,
            "latency_ms": ctx.latency_ms,
            "ttft_ms": ctx.ttft_ms,
            "upstream_ms": ctx.upstream_ms,
            "overhead_ms": ctx.overhead_ms,
            "error": f"{error['code']}: {error['message']}"[:ERROR_LENGTH] if error else None,
            "created_at": ctx.started_at,
        }

    # -- the API -------------------------------------------------------------------------------

    def _summary(self) -> Select[Any]:
        r = RequestRow
        return select(
            SessionRow,
            func.count(r.id),
            func.coalesce(func.sum(r.tokens_in), 0),
            func.coalesce(func.sum(r.tokens_out), 0),
            func.coalesce(func.sum(r.cost_usd), 0.0),
        ).outerjoin(r, and_(r.tenant == SessionRow.tenant, r.session_id == SessionRow.id))

    def _out(self, row: Any) -> SessionOut:
        session, count, tokens_in, tokens_out, cost = row
        state = self.states.get(session.tenant)
        return SessionOut(
            id=session.id,
            name=session.name,
            created_at=session.created_at,
            last_used_at=session.last_used_at,
            active=state is not None and state.active_id == session.id,
            requests=count,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=round(float(cost), 8),
        )

    async def list(self, tenant: str, limit: int, cursor: str | None) -> Page[SessionOut]:
        await self.flush()
        query = self._summary().where(SessionRow.tenant == tenant).group_by(SessionRow.tenant, SessionRow.id)
        query = newest_first(query, SessionRow.created_at, SessionRow.id, limit=limit, cursor=cursor)
        async with self.db.read() as session:
            rows = list((await session.execute(query)).all())
        return page_of_rows(rows, limit, self._out, lambda row: (row[0].created_at, row[0].id))

    async def get(self, tenant: str, session_id: str) -> SessionOut:
        await self.flush()
        query = (
            self._summary()
            .where(SessionRow.tenant == tenant, SessionRow.id == session_id)
            .group_by(SessionRow.tenant, SessionRow.id)
        )
        async with self.db.read() as session:
            row = (await session.execute(query)).first()
        if row is None:
            raise NotFound(f"no session with id {session_id}")
        return self._out(row)

    async def active(self, tenant: str) -> SessionOut:
        state = self.states.get(tenant)
        if state is None or state.active_id is None:
            raise NotFound("no session is active yet")
        return await self.get(tenant, state.active_id)

    async def create(self, tenant: str, name: str | None, activate: bool) -> SessionOut:
        await self.flush()
        now = utcnow()
        session_id = str(uuid.uuid4())
        state = self.state_of(tenant)
        async with self.db.write() as session:
            session.add(SessionRow(tenant=tenant, id=session_id, name=name, created_at=now, last_used_at=now))
            if activate:
                state.active_id, state.fingerprint, state.last_seen = session_id, None, time.monotonic()
                await self._save_state(session, tenant)
        await self.events.publish(EVENTS_CHANNEL, "session.created", tenant, {"session_id": session_id})
        return await self.get(tenant, session_id)

    async def upsert(
        self, tenant: str, session_id: str, *, name: str | None, created_at: datetime, last_used_at: datetime
    ) -> bool:
        """Create or update a session with a given id and times, for importers (a Cline task
        becomes a session); answers whether it was new. Importing again changes nothing else."""
        values = {
            "tenant": tenant,
            "id": session_id,
            "name": name,
            "created_at": created_at,
            "last_used_at": last_used_at,
        }
        async with self.db.write() as session:
            existed = await session.get(SessionRow, (tenant, session_id)) is not None
            statement = self._insert(SessionRow.__table__).values(values)
            statement = statement.on_conflict_do_update(
                index_elements=["tenant", "id"],
                set_={"name": statement.excluded.name, "last_used_at": statement.excluded.last_used_at},
            )
            await session.execute(statement)
        if not existed:
            await self.events.publish(EVENTS_CHANNEL, "session.created", tenant, {"session_id": session_id})
        return not existed

    async def activate(self, tenant: str, session_id: str) -> SessionOut:
        found = await self.get(tenant, session_id)
        state = self.state_of(tenant)
        async with self._lock, self.db.write() as session:
            # The next request continues this session whatever its first message (see resolve).
            state.active_id, state.fingerprint, state.last_seen = session_id, None, time.monotonic()
            await self._save_state(session, tenant)
        await self.events.publish(EVENTS_CHANNEL, "session.activated", tenant, {"session_id": session_id})
        return found.model_copy(update={"active": True})

    def auto_status(self, tenant: str) -> AutoStatus:
        state = self.state_of(tenant)
        return AutoStatus(
            enabled=state.auto, idle_minutes=self.settings.idle_minutes, active_session_id=state.active_id
        )

    async def toggle_auto(self, tenant: str, enabled: bool | None) -> AutoStatus:
        state = self.state_of(tenant)
        async with self._lock, self.db.write() as session:
            state.auto = (not state.auto) if enabled is None else enabled
            await self._save_state(session, tenant)
        return self.auto_status(tenant)

    async def delete(
        self, tenant: str, ids: list[str], before: datetime | None, everything: bool
    ) -> DeleteResult:
        if not (ids or before or everything):
            raise BadRequest(
                "name the sessions to delete (ids, before) or pass all=true to delete every session"
            )
        await self.flush()
        chosen = select(SessionRow.id).where(SessionRow.tenant == tenant)
        if not everything:
            conditions = []
            if ids:
                conditions.append(SessionRow.id.in_(ids))
            if before is not None:
                conditions.append(SessionRow.last_used_at < before)
            chosen = chosen.where(or_(*conditions))
        async with self._lock, self.db.write() as session:
            doomed = list((await session.scalars(chosen)).all())
            removed_requests = 0
            for start in range(0, len(doomed), 500):
                part = doomed[start : start + 500]
                result = await session.execute(
                    delete(RequestRow).where(RequestRow.tenant == tenant, RequestRow.session_id.in_(part))
                )
                removed_requests += result.rowcount or 0
                await session.execute(
                    delete(SessionRow).where(SessionRow.tenant == tenant, SessionRow.id.in_(part))
                )
            state = self.states.get(tenant)
            if state is not None and state.active_id in set(doomed):
                state.active_id, state.fingerprint = None, None
                await self._save_state(session, tenant)
        if doomed:
            await self.events.publish(EVENTS_CHANNEL, "session.deleted", tenant, {"session_ids": doomed})
        return DeleteResult(sessions=len(doomed), requests=removed_requests)

    # -- maintenance ---------------------------------------------------------------------------

    async def _size(self) -> int:
        if self.db.dialect == "sqlite":
            if self.db.path is None:
                return 0
            files = [self.db.path, self.db.path.with_name(self.db.path.name + "-wal")]
            return sum(f.stat().st_size for f in files if f.exists())
        async with self.db.read() as session:
            return int(await session.scalar(text("SELECT pg_database_size(current_database())")) or 0)

    async def vacuum(self) -> VacuumResult:
        """Reclaim space: SQLite rewrites the file (after a checkpoint), PostgreSQL vacuums and
        analyses this plugin's tables."""
        await self.flush()
        before = await self._size()
        started = time.perf_counter()
        async with self._lock:
            if self.db.dialect == "sqlite":
                if self.db.path is not None:
                    # VACUUM needs a connection outside any transaction: a dedicated one.
                    async with aiosqlite.connect(self.db.path, isolation_level=None) as raw:
                        for statement in SQLITE_VACUUM:
                            async with raw.execute(statement) as cursor:
                                await cursor.fetchall()
            else:
                async with self.db.engine.connect() as conn:
                    autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    for table in ("sessions_requests", "sessions_sessions", "sessions_tenants"):
                        await autocommit.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
        return VacuumResult(
            database=self.db.dialect,
            bytes_before=before,
            bytes_after=await self._size(),
            seconds=round(time.perf_counter() - started, 3),
        )

    async def diagnostic(self, tenant: str) -> Diagnostic:
        await self.flush()
        r, s, t = RequestRow, SessionRow, TenantStateRow
        orphan = ~exists().where(s.tenant == r.tenant, s.id == r.session_id)
        async with self.db.read() as session:

            async def count(query: Any) -> int:
                return int(await session.scalar(query) or 0)

            rows = {
                "sessions": await count(select(func.count()).select_from(s)),
                "requests": await count(select(func.count()).select_from(r)),
                "tenants": await count(select(func.count()).select_from(t)),
            }
            tenant_rows = {
                "sessions": await count(select(func.count()).select_from(s).where(s.tenant == tenant)),
                "requests": await count(select(func.count()).select_from(r).where(r.tenant == tenant)),
            }
            findings = [
                Inconsistency(
                    kind="orphan_requests",
                    count=await count(
                        select(func.count()).select_from(r).where(r.session_id.is_not(None), orphan)
                    ),
                    description="log records whose session no longer exists",
                ),
                Inconsistency(
                    kind="dangling_active_sessions",
                    count=await count(
                        select(func.count())
                        .select_from(t)
                        .where(
                            t.active_session_id.is_not(None),
                            ~exists().where(s.tenant == t.tenant, s.id == t.active_session_id),
                        )
                    ),
                    description="tenants whose active session does not exist",
                ),
                Inconsistency(
                    kind="sessions_used_before_created",
                    count=await count(
                        select(func.count()).select_from(s).where(s.last_used_at < s.created_at)
                    ),
                    description="sessions whose last use precedes their creation",
                ),
                Inconsistency(
                    kind="requests_without_session",
                    count=await count(select(func.count()).select_from(r).where(r.session_id.is_(None))),
                    description="log records not assigned to any session",
                ),
            ]
        return Diagnostic(
            database=self.db.dialect,
            size_bytes=await self._size(),
            rows=rows,
            tenant_rows=tenant_rows,
            pending_log_records=len(self._requests),
            inconsistencies=findings,
        )

    # -- for exports ---------------------------------------------------------------------------

    async def iter_requests(self, tenant: str, **selection: Any) -> AsyncIterator[dict[str, Any]]:
        """The tenant's log records, oldest first, streamed from the database; ``selection``
        is ``since``, ``until``, ``session_id`` and ``model`` (name or provider/model)."""
        filters = Filters(**selection)
        await self.flush()
        query = select(RequestRow).where(RequestRow.tenant == tenant)
        if filters.since is not None:
            query = query.where(RequestRow.created_at >= filters.since)
        if filters.until is not None:
            query = query.where(RequestRow.created_at < filters.until)
        if filters.session_id is not None:
            query = query.where(RequestRow.session_id == filters.session_id)
        if filters.model is not None:
            query = query.where(or_(RequestRow.model == filters.model, _qualified(filters.model, RequestRow)))
        query = query.order_by(RequestRow.created_at, RequestRow.id).execution_options(yield_per=500)
        async with self.db.read() as session:
            result = await session.stream_scalars(query)
            async for row in result:
                yield {column: getattr(row, column) for column in REQUEST_COLUMNS}

    async def iter_sessions(self, tenant: str, **selection: Any) -> AsyncIterator[dict[str, Any]]:
        """The tenant's sessions with their totals, oldest first, streamed from the database
        (those used in the time range, or that have requests of the model)."""
        filters = Filters(**selection)
        await self.flush()
        query = self._summary().where(SessionRow.tenant == tenant)
        if filters.since is not None:
            query = query.where(SessionRow.last_used_at >= filters.since)
        if filters.until is not None:
            query = query.where(SessionRow.created_at < filters.until)
        if filters.session_id is not None:
            query = query.where(SessionRow.id == filters.session_id)
        if filters.model is not None:
            r = aliased(RequestRow)
            query = query.where(
                exists()
                .where(
                    r.tenant == SessionRow.tenant,
                    r.session_id == SessionRow.id,
                    or_(r.model == filters.model, _qualified(filters.model, r)),
                )
                .correlate(SessionRow)
            )
        query = (
            query.group_by(SessionRow.tenant, SessionRow.id)
            .order_by(SessionRow.created_at, SessionRow.id)
            .execution_options(yield_per=500)
        )
        async with self.db.read() as session:
            result = await session.stream(query)
            async for row in result:
                yield self._out(row).model_dump()


def _qualified(model: str, table: Any) -> Any:
    """``provider/model`` matches the record's provider and model."""
    provider, slash, name = model.partition("/")
    if not slash:
        return false()
    return and_(table.provider == provider, table.model == name)


async def start(registry: Any) -> SessionService:
    stores: list[tuple[str, SharedStateStore]] = []

    def register(plugin: str) -> dict[str, Any]:
        def add(name: str, store: SharedStateStore) -> None:
            registry.claim("session state store", "store", plugin)
            stores.append((name, store))

        return {"register": add, "registry": registry}

    await registry.host.call_each_async("register_session_state_stores", register)
    shared = stores[0][1] if stores else None
    service = SessionService(registry.db, registry.events, registry.plugin_settings(SERVICE), shared)
    await service.start()
    registry.provide(SERVICE, service, plugin="sessions")
    return service
