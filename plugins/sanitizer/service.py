"""Masking on the gateway's way out, the vault of originals, and what the routes show.

``mask`` runs on the request path (last in ``chat_request``) and never awaits: it rewrites every
message text, tool-call argument and tool result of the body in place, and adds a filter that
restores this request's placeholders in the answer. What it saw is queued and written in
batches by a background task (``flush``); the originals only ever reach the database sealed.
Reads flush first, so they see every request answered before them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mnemogate.core.contracts import ChatContext, Detector, Principal, utcnow
from mnemogate.core.db import Database
from mnemogate.core.errors import Conflict, NotFound
from mnemogate.core.flusher import Flusher
from mnemogate.core.pagination import Page, newest_first, page_of_rows
from mnemogate.plugins.sanitizer.models import (
    AuditRow,
    DetectorStats,
    MaskOut,
    MaskRow,
    MaskSessionRow,
    RevealedMask,
    SanitizerStats,
    TenantRow,
    ToggleState,
)
from mnemogate.plugins.sanitizer.restore import ResponseRestorer, StreamRestorer, placeholder
from mnemogate.plugins.sanitizer.scanner import Scanner
from mnemogate.plugins.sanitizer.settings import SanitizerSettings
from mnemogate.plugins.sanitizer.vault import Vault, load_master_key

log = logging.getLogger("mnemogate.sanitizer")

SERVICE = "sanitizer"
DATA_KEY = "sanitizer"
SESSIONS_SHOWN = 50
MAX_PENDING = 100_000


@dataclass(slots=True)
class Counters:
    requests_scanned: int = 0
    requests_masked: int = 0
    secrets_masked: int = 0
    placeholders_restored: int = 0
    bytes_scanned: int = 0
    scan_seconds: float = 0.0


@dataclass(slots=True)
class Sighting:
    kind: str
    sealed: bytes
    first: datetime
    last: datetime
    count: int = 0
    sessions: set[str] = field(default_factory=set)


@dataclass(slots=True)
class TenantState:
    enabled: bool
    updated_at: datetime | None = None
    updated_by: str | None = None


class _Masker:
    """Masks the texts of one request and remembers what it replaced."""

    def __init__(self, scanner: Scanner, vault: Vault, tenant: str) -> None:
        self.scanner = scanner
        self.vault = vault
        self.tenant = tenant
        self.originals: dict[str, str] = {}  # placeholder -> original
        self.found: list[tuple[str, str, str]] = []  # kind, content hash, original
        self.scanned = 0

    def text(self, text: str) -> str:
        self.scanned += len(text)
        spans = self.scanner.spans(text)
        if not spans:
            return text
        parts: list[str] = []
        last = 0
        for span in spans:
            original = text[span.start : span.end]
            content_hash = self.vault.content_hash(self.tenant, original)
            name = placeholder(span.kind, content_hash)
            self.originals[name] = original
            self.found.append((span.kind, content_hash, original))
            parts += (text[last : span.start], name)
            last = span.end
        parts.append(text[last:])
        return "".join(parts)

    def message(self, message: dict[str, Any]) -> None:
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = self.text(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    part["text"] = self.text(part["text"])
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    function["arguments"] = self.text(function["arguments"])
        legacy = message.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
            legacy["arguments"] = self.text(legacy["arguments"])


class SanitizerService:
    def __init__(
        self, db: Database, settings: SanitizerSettings, detectors: dict[str, Any], vault: Vault
    ) -> None:
        self.db = db
        self.settings = settings
        self.vault = vault
        usable = {}
        for kind, detector in detectors.items():
            if isinstance(detector, Detector):
                usable[kind] = detector
            else:
                log.warning("detector %r does not implement the Detector protocol; masking skips it", kind)
        self.all_kinds = sorted(usable)
        self.active = [
            detector
            for kind, detector in usable.items()
            if kind not in settings.disabled_detectors
            and (settings.pii or not getattr(detector, "pii", False))
        ]
        self.scanner = Scanner(self.active)
        self.states: dict[str, TenantState] = {}
        self.counters: dict[str, Counters] = {}
        self._pending: dict[tuple[str, str], Sighting] = {}
        self._lock = asyncio.Lock()
        self.flusher = Flusher(self.flush, settings.flush_interval_seconds, "mask sightings")

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        async with self.db.read() as session:
            for row in (await session.scalars(select(TenantRow))).all():
                self.states[row.tenant] = TenantState(row.enabled, row.updated_at, row.updated_by)
        self.flusher.start()

    async def stop(self) -> None:
        await self.flusher.stop()

    # -- the request path (no awaits) ----------------------------------------------------------

    def state_of(self, tenant: str) -> TenantState:
        return self.states.get(tenant) or TenantState(self.settings.enabled)

    def counters_of(self, tenant: str) -> Counters:
        counters = self.counters.get(tenant)
        if counters is None:
            counters = self.counters[tenant] = Counters()
        return counters

    def mask(self, ctx: ChatContext) -> None:
        """Mask the outgoing body in place; restore this request's placeholders in the answer."""
        tenant = ctx.tenant
        if not self.state_of(tenant).enabled:
            return
        began = time.perf_counter()
        masker = _Masker(self.scanner, self.vault, tenant)
        for message in ctx.body.get("messages") or ():
            if isinstance(message, dict):
                masker.message(message)
        counters = self.counters_of(tenant)
        counters.requests_scanned += 1
        counters.bytes_scanned += masker.scanned
        if masker.found:
            counters.requests_masked += 1
            counters.secrets_masked += len(masker.found)
            if ctx.stream:
                ctx.chunk_filters.append(StreamRestorer(masker.originals, counters))
            else:
                ctx.response_filters.append(ResponseRestorer(masker.originals, counters))
            kinds: dict[str, int] = {}
            for kind, _, _ in masker.found:
                kinds[kind] = kinds.get(kind, 0) + 1
            ctx.data[DATA_KEY] = {"masked": len(masker.found), "kinds": kinds}
            self._sighted(tenant, ctx.session_id, masker.found)
        counters.scan_seconds += time.perf_counter() - began

    def _sighted(self, tenant: str, session_id: str | None, found: list[tuple[str, str, str]]) -> None:
        now = utcnow()
        for kind, content_hash, original in found:
            sighting = self._pending.get((tenant, content_hash))
            if sighting is None:
                if len(self._pending) >= MAX_PENDING:
                    log.error("mask sightings are %d behind; dropping one", MAX_PENDING)
                    continue
                sealed = self.vault.seal(tenant, content_hash, original)
                sighting = self._pending[(tenant, content_hash)] = Sighting(kind, sealed, now, now)
            sighting.count += 1
            sighting.last = now
            if session_id:
                sighting.sessions.add(session_id)

    # -- writing -------------------------------------------------------------------------------

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.db.dialect == "postgresql" else sqlite_insert)(table)

    async def flush(self) -> None:
        async with self._lock:
            pending, self._pending = self._pending, {}
            if not pending:
                return
            masks = [
                {
                    "tenant": tenant,
                    "content_hash": content_hash,
                    "kind": s.kind,
                    "sealed": s.sealed,
                    "first_seen_at": s.first,
                    "last_seen_at": s.last,
                    "count": s.count,
                }
                for (tenant, content_hash), s in pending.items()
            ]
            sessions = [
                {"tenant": tenant, "content_hash": content_hash, "session_id": sid, "first_seen_at": s.first}
                for (tenant, content_hash), s in pending.items()
                for sid in s.sessions
            ]
            try:
                async with self.db.write() as session:
                    statement = self._insert(MaskRow.__table__).values(masks)
                    statement = statement.on_conflict_do_update(
                        index_elements=["tenant", "content_hash"],
                        set_={
                            "last_seen_at": statement.excluded.last_seen_at,
                            "count": MaskRow.__table__.c.count + statement.excluded.count,
                        },
                    )
                    await session.execute(statement)
                    if sessions:
                        insert = self._insert(MaskSessionRow.__table__).values(sessions)
                        await session.execute(insert.on_conflict_do_nothing())
            except BaseException:
                for key, sighting in pending.items():
                    newer = self._pending.get(key)
                    if newer is not None:
                        sighting.count += newer.count
                        sighting.last = newer.last
                        sighting.sessions |= newer.sessions
                    self._pending[key] = sighting
                raise

    async def _audit(self, session: Any, tenant: str, action: str, principal: Principal, detail: str) -> None:
        session.add(
            AuditRow(
                id=str(uuid.uuid4()),
                tenant=tenant,
                action=action,
                key_id=principal.key_id,
                detail=detail,
                at=utcnow(),
            )
        )
        log.info(
            "sanitizer %s by %s in tenant %s: %s", action, principal.key_id or "open access", tenant, detail
        )

    # -- the API -------------------------------------------------------------------------------

    def _out(self, row: MaskRow, sessions: list[str]) -> MaskOut:
        return MaskOut(
            content_hash=row.content_hash,
            kind=row.kind,
            placeholder=placeholder(row.kind, row.content_hash),
            first_seen_at=row.first_seen_at,
            last_seen_at=row.last_seen_at,
            count=row.count,
            sessions=sessions,
        )

    async def _sessions_of(self, session: Any, tenant: str, hashes: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {h: [] for h in hashes}
        if not hashes:
            return found
        rows = await session.execute(
            select(MaskSessionRow.content_hash, MaskSessionRow.session_id)
            .where(MaskSessionRow.tenant == tenant, MaskSessionRow.content_hash.in_(hashes))
            .order_by(MaskSessionRow.first_seen_at.desc())
        )
        for content_hash, session_id in rows:
            if len(found[content_hash]) < SESSIONS_SHOWN:
                found[content_hash].append(session_id)
        return found

    async def list(self, tenant: str, limit: int, cursor: str | None, kind: str | None) -> Page[MaskOut]:
        await self.flush()
        query = select(MaskRow).where(MaskRow.tenant == tenant)
        if kind is not None:
            query = query.where(MaskRow.kind == kind)
        query = newest_first(query, MaskRow.last_seen_at, MaskRow.content_hash, limit=limit, cursor=cursor)
        async with self.db.read() as session:
            rows = (await session.scalars(query)).all()
            sessions = await self._sessions_of(session, tenant, [r.content_hash for r in rows[:limit]])
        return page_of_rows(
            rows,
            limit,
            lambda row: self._out(row, sessions.get(row.content_hash, [])),
            lambda row: (row.last_seen_at, row.content_hash),
        )

    async def reveal(self, principal: Principal, content_hash: str) -> RevealedMask:
        await self.flush()
        tenant = principal.tenant
        async with self.db.write() as session:
            row = await session.get(MaskRow, (tenant, content_hash))
            if row is None:
                raise NotFound(f"no mask {content_hash!r} in this tenant", code="mask_not_found")
            try:
                original = self.vault.open(tenant, content_hash, row.sealed)
            except InvalidTag:
                raise Conflict(
                    "the vault key cannot open this mask (was vault_key changed?)", code="vault_key_mismatch"
                ) from None
            sessions = await self._sessions_of(session, tenant, [content_hash])
            await self._audit(session, tenant, "reveal", principal, f"{row.kind} {content_hash}")
        return RevealedMask(**self._out(row, sessions[content_hash]).model_dump(), original=original)

    async def stats(self, tenant: str) -> SanitizerStats:
        await self.flush()
        async with self.db.read() as session:
            rows = await session.execute(
                select(MaskRow.kind, func.count(), func.coalesce(func.sum(MaskRow.count), 0))
                .where(MaskRow.tenant == tenant)
                .group_by(MaskRow.kind)
            )
            by_kind = {kind: (int(masks), int(sightings)) for kind, masks, sightings in rows}
        active = {d.kind for d in self.active}
        kinds = sorted(set(self.all_kinds) | set(by_kind))
        counters = self.counters_of(tenant)
        return SanitizerStats(
            enabled=self.state_of(tenant).enabled,
            detectors=[
                DetectorStats(
                    kind=kind,
                    active=kind in active,
                    masks=by_kind.get(kind, (0, 0))[0],
                    sightings=by_kind.get(kind, (0, 0))[1],
                )
                for kind in kinds
            ],
            masks=sum(m for m, _ in by_kind.values()),
            sightings=sum(s for _, s in by_kind.values()),
            requests_scanned=counters.requests_scanned,
            requests_masked=counters.requests_masked,
            secrets_masked=counters.secrets_masked,
            placeholders_restored=counters.placeholders_restored,
            bytes_scanned=counters.bytes_scanned,
            mean_scan_us=round(counters.scan_seconds * 1e6 / counters.requests_scanned, 2)
            if counters.requests_scanned
            else 0.0,
        )

    async def toggle(self, principal: Principal, enabled: bool | None) -> ToggleState:
        tenant = principal.tenant
        current = self.state_of(tenant)
        wanted = (not current.enabled) if enabled is None else enabled
        state = TenantState(wanted, utcnow(), principal.key_id)
        async with self.db.write() as session:
            values = {
                "tenant": tenant,
                "enabled": state.enabled,
                "updated_at": state.updated_at,
                "updated_by": state.updated_by,
            }
            statement = self._insert(TenantRow.__table__).values(values)
            statement = statement.on_conflict_do_update(
                index_elements=["tenant"], set_={k: v for k, v in values.items() if k != "tenant"}
            )
            await session.execute(statement)
            await self._audit(session, tenant, "toggle", principal, f"masking {'on' if wanted else 'off'}")
        self.states[tenant] = state
        return self.toggle_state(tenant)

    def toggle_state(self, tenant: str) -> ToggleState:
        state = self.state_of(tenant)
        return ToggleState(enabled=state.enabled, updated_at=state.updated_at, updated_by=state.updated_by)


async def start(registry: Any) -> SanitizerService:
    settings: SanitizerSettings = registry.plugin_settings(SERVICE)
    configured = settings.vault_key.get_secret_value() if settings.vault_key else None
    vault = Vault(load_master_key(configured, registry.settings.data_dir))
    service = SanitizerService(registry.db, settings, registry.detectors, vault)
    await service.start()
    registry.provide(SERVICE, service, plugin=SERVICE)
    return service
