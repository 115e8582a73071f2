"""Reading Cline's task folders and importing them.

Cline (the VS Code extension ``saoudrizwan.claude-dev``) keeps each task in
``<global storage>/tasks/<task id>/``: ``api_conversation_history.json`` (the messages sent to the
model, Anthropic-shaped, newer versions with ``ts`` and ``modelInfo``), ``ui_messages.json`` (what
the panel showed; each ``say: "api_req_started"`` entry carries a JSON ``text`` with
``tokensIn``, ``tokensOut``, ``cacheWrites``, ``cacheReads`` and ``cost``, newer versions a
``modelInfo`` beside it) and ``task_metadata.json`` (``model_usage``: which model was chosen
when). A task becomes a gateway session (its id derived from tenant and task id), its messages
episodes (ids derived the same way, so importing again updates instead of duplicating), its API
requests rows of ``cline_requests``. A task whose files did not change since its import is
skipped; a bad file is reported with its task and name, and the other tasks are still imported.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import delete, func, insert, select

from mnemogate.core.contracts import PortableMemory, utcnow
from mnemogate.core.errors import NotFound
from mnemogate.core.pagination import page_of_sequence
from mnemogate.core.registry import Registry
from mnemogate.plugins.cline.models import (
    TASK_ID_PATTERN,
    ClineStatus,
    ImportRequest,
    ImportResult,
    LastImport,
    RequestRow,
    TaskProblem,
    TaskRow,
    Usage,
    UsagePage,
)
from mnemogate.plugins.cline.settings import ClineSettings

log = logging.getLogger("mnemogate.cline")

SERVICE = "cline"
EXTENSION = "saoudrizwan.claude-dev"
HISTORY = "api_conversation_history.json"
UI_MESSAGES = "ui_messages.json"
METADATA = "task_metadata.json"
TASK_FILES = (HISTORY, UI_MESSAGES, METADATA)
SESSION_IDS = uuid.UUID("7d1c2f4e-3b0a-4c55-9e61-2a8f0d6b9c13")
EPISODE_IDS = uuid.UUID("b84e0f3a-61d2-4f7b-a0c9-5e3d1b7a2f68")
EPISODE_BATCH = 200
REPORTED_PROBLEMS = 200
EVENTS_CHANNEL = "events"
_TASK_ID = re.compile(TASK_ID_PATTERN)


def default_data_dir(
    platform: str = sys.platform, environ: Mapping[str, str] = os.environ, home: Path | None = None
) -> Path:
    """Where VS Code keeps Cline's global storage on this operating system."""
    home = home or Path.home()
    if platform == "darwin":
        base = home / "Library" / "Application Support"
    elif platform.startswith("win"):
        base = Path(environ.get("APPDATA") or home / "AppData" / "Roaming")
    else:
        base = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return base / "Code" / "User" / "globalStorage" / EXTENSION


class TaskFileError(Exception):
    def __init__(self, file: str | None, message: str) -> None:
        super().__init__(message)
        self.file = file
        self.message = message


@dataclass(slots=True)
class ParsedRequest:
    position: int
    at: datetime
    provider: str | None
    model: str
    tokens_in: int
    tokens_out: int
    cache_writes: int
    cache_reads: int
    cost_usd: float


@dataclass(slots=True)
class ParsedMessage:
    position: int
    at: datetime
    role: str
    text: str


@dataclass(slots=True)
class ParsedTask:
    task_id: str
    title: str | None
    started_at: datetime
    ended_at: datetime
    messages: list[ParsedMessage] = field(default_factory=list)
    requests: list[ParsedRequest] = field(default_factory=list)


def _time(millis: Any) -> datetime | None:
    if isinstance(millis, bool) or not isinstance(millis, int | float) or not 0 < millis < 10**14:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC)


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0


def fingerprint(folder: Path) -> str:
    """Names, sizes and modification times of the task's files: changes when Cline writes."""
    parts = []
    for name in TASK_FILES:
        try:
            stat = (folder / name).stat()
        except FileNotFoundError:
            continue
        parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _read_json(folder: Path, name: str, limit: int) -> Any:
    path = folder / name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size > limit:
        raise TaskFileError(name, f"larger than {limit} bytes (plugins.cline.max_file_bytes)")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise TaskFileError(name, "not valid JSON") from None
    except OSError as exc:
        raise TaskFileError(name, f"unreadable ({type(exc).__name__})") from None


def _block_text(block: Any) -> str:
    """The readable part of one Anthropic content block."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text") or "")
    if kind == "tool_use":
        arguments = json.dumps(block.get("input"), ensure_ascii=False)[:2000]
        return f"[tool call {block.get('name')}] {arguments}"
    if kind == "tool_result":
        content = block.get("content")
        inner = content if isinstance(content, list) else [content]
        return "[tool result] " + "\n".join(_block_text(part) for part in inner if part)
    if kind == "image":
        return "[image]"
    return ""


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(text for text in (_block_text(b) for b in content) if text)
    return ""


def _model_of(info: Any) -> tuple[str | None, str | None]:
    if isinstance(info, dict) and isinstance(info.get("modelId"), str) and info["modelId"]:
        provider = info.get("providerId")
        return info["modelId"][:200], provider[:64] if isinstance(provider, str) and provider else None
    return None, None


def parse_task(folder: Path, settings: ClineSettings) -> ParsedTask:
    limit = settings.max_file_bytes
    history = _read_json(folder, HISTORY, limit)
    ui = _read_json(folder, UI_MESSAGES, limit)
    if history is None and ui is None:
        raise TaskFileError(None, f"neither {HISTORY} nor {UI_MESSAGES} is there")
    for name, value in ((HISTORY, history), (UI_MESSAGES, ui)):
        if value is not None and not isinstance(value, list):
            raise TaskFileError(name, "expected a JSON array of messages")
    history, ui = history or [], ui or []
    try:
        metadata = _read_json(folder, METADATA, limit)
    except TaskFileError:
        metadata = None  # optional: it only tells which model was chosen when
    # (time, model, provider) choices, oldest first
    choices: list[tuple[float, str, str | None]] = []
    if isinstance(metadata, dict) and isinstance(metadata.get("model_usage"), list):
        for entry in metadata["model_usage"]:
            if isinstance(entry, dict) and isinstance(entry.get("model_id"), str):
                provider = entry.get("model_provider_id")
                choices.append(
                    (
                        float(_count(entry.get("ts"))),
                        entry["model_id"][:200],
                        provider[:64] if isinstance(provider, str) else None,
                    )
                )
        choices.sort(key=lambda choice: choice[0])
    history_model = next(
        (
            _model_of(m.get("modelInfo"))
            for m in reversed(history)
            if isinstance(m, dict) and m.get("modelInfo")
        ),
        (None, None),
    )

    times = [t for t in (_time(m.get("ts")) for m in [*ui, *history] if isinstance(m, dict)) if t is not None]
    from_id = _time(int(folder.name)) if folder.name.isdigit() else None
    started = min([*times, *([from_id] if from_id else [])], default=None) or utcnow()
    ended = max(times, default=started)
    task = ParsedTask(task_id=folder.name, title=None, started_at=started, ended_at=ended)

    for position, message in enumerate(ui):
        if not isinstance(message, dict):
            continue
        if task.title is None and message.get("say") == "task" and isinstance(message.get("text"), str):
            task.title = message["text"].strip()[:200] or None
        if message.get("say") != "api_req_started":
            continue
        try:
            info = json.loads(message.get("text") or "{}")
        except (TypeError, ValueError):
            info = {}
        info = info if isinstance(info, dict) else {}
        at = _time(message.get("ts")) or started
        model, provider = _model_of(message.get("modelInfo"))
        if model is None and choices:
            stamp = at.timestamp() * 1000
            chosen = [c for c in choices if c[0] <= stamp] or choices[:1]
            model, provider = chosen[-1][1], chosen[-1][2]
        if model is None:
            model, provider = history_model
        cost = info.get("cost")
        task.requests.append(
            ParsedRequest(
                position=position,
                at=at,
                provider=provider,
                model=model or "unknown",
                tokens_in=_count(info.get("tokensIn")),
                tokens_out=_count(info.get("tokensOut")),
                cache_writes=_count(info.get("cacheWrites")),
                cache_reads=_count(info.get("cacheReads")),
                cost_usd=float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else 0.0,
            )
        )

    for position, message in enumerate(history):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        text = _message_text(message).strip()
        if not text:
            continue
        if task.title is None and message["role"] == "user":
            task.title = text[:200]
        at = _time(message.get("ts")) or datetime.fromtimestamp(started.timestamp() + position / 1000, UTC)
        task.messages.append(ParsedMessage(position, at, message["role"], text[: settings.max_episode_chars]))
    return task


class ClineService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = asyncio.Lock()

    @property
    def settings(self) -> ClineSettings:
        return self.registry.plugin_settings(SERVICE)

    @property
    def data_dir(self) -> Path:
        return (self.settings.data_dir or default_data_dir()).expanduser()

    def _task_folders(self) -> tuple[list[Path], list[str]]:
        """(task folders, names of entries that are not task folders)."""
        tasks = self.data_dir / "tasks"
        if not tasks.is_dir():
            return [], []
        folders, odd = [], []
        for entry in sorted(tasks.iterdir()):
            if entry.is_dir() and _TASK_ID.match(entry.name):
                folders.append(entry)
            elif entry.is_dir():
                odd.append(entry.name[:128])
        return folders, odd

    async def status(self, tenant: str) -> ClineStatus:
        found = await asyncio.to_thread((self.data_dir / "tasks").is_dir)
        folders, _ = await asyncio.to_thread(self._task_folders)
        async with self.registry.db.read() as session:
            imported, last = (
                await session.execute(
                    select(func.count(), func.max(TaskRow.imported_at)).where(TaskRow.tenant == tenant)
                )
            ).one()
            in_last = 0
            if last is not None:
                in_last = (
                    await session.execute(
                        select(func.count()).where(TaskRow.tenant == tenant, TaskRow.imported_at == last)
                    )
                ).scalar_one()
        return ClineStatus(
            found=found,
            data_dir_source="configured" if self.settings.data_dir else "default",
            platform=sys.platform,
            tasks_seen=len(folders),
            tasks_imported=int(imported),
            last_import=None if last is None else LastImport(at=last, tasks=int(in_last)),
        )

    async def import_tasks(self, tenant: str, request: ImportRequest) -> ImportResult:
        if not await asyncio.to_thread((self.data_dir / "tasks").is_dir):
            raise NotFound(
                "Cline's data directory (with its tasks/ folder) was not found; set plugins.cline.data_dir"
            )
        async with self._lock:
            return await self._import(tenant, request)

    async def _import(self, tenant: str, request: ImportRequest) -> ImportResult:
        folders, odd = await asyncio.to_thread(self._task_folders)
        result = ImportResult(
            tasks_seen=len(folders),
            imported=0,
            unchanged=0,
            failed=0,
            sessions_created=0,
            episodes=0,
            requests=0,
            problems=[],
        )

        def problem(task_id: str, file: str | None, message: str) -> None:
            if len(result.problems) < REPORTED_PROBLEMS:
                result.problems.append(TaskProblem(task_id=task_id, file=file, message=message))

        for name in odd:
            problem(name, None, "not a task folder name (letters, digits, '.', '_', '-')")
        if request.task_ids is not None:
            wanted = set(request.task_ids)
            for missing in sorted(wanted - {f.name for f in folders}):
                result.failed += 1
                problem(missing, None, "no such task folder")
            folders = [f for f in folders if f.name in wanted]
        async with self.registry.db.read() as session:
            rows = await session.execute(
                select(TaskRow.task_id, TaskRow.fingerprint).where(TaskRow.tenant == tenant)
            )
            known = {task_id: stamp for task_id, stamp in rows}
        run_at = utcnow()
        for done, folder in enumerate(folders, start=1):
            stamp = await asyncio.to_thread(fingerprint, folder)
            if not request.force and known.get(folder.name) == stamp:
                result.unchanged += 1
                continue
            try:
                task = await asyncio.to_thread(parse_task, folder, self.settings)
                await self._store(tenant, task, stamp, run_at, result, problem)
            except TaskFileError as exc:
                result.failed += 1
                problem(folder.name, exc.file, exc.message)
                continue
            result.imported += 1
            await self.registry.events.publish(
                EVENTS_CHANNEL,
                "cline.import.progress",
                tenant,
                {"task_id": task.task_id, "done": done, "total": len(folders)},
            )
        log.info(
            "cline import: %d imported, %d unchanged, %d failed",
            result.imported,
            result.unchanged,
            result.failed,
        )
        return result

    async def _store(
        self, tenant: str, task: ParsedTask, stamp: str, run_at: datetime, result: ImportResult, problem: Any
    ) -> None:
        session_id = str(uuid.uuid5(SESSION_IDS, f"{tenant}\0{task.task_id}"))
        sessions = self.registry.services.get("sessions")
        if sessions is not None:
            name = f"Cline: {task.title}"[:200] if task.title else f"Cline task {task.task_id}"
            created = await sessions.upsert(
                tenant, session_id, name=name, created_at=task.started_at, last_used_at=task.ended_at
            )
            result.sessions_created += int(created)
        episodes = await self._episodes(tenant, task, session_id, problem) if self.settings.episodes else 0
        result.episodes += episodes
        rows = [
            {
                "tenant": tenant,
                "task_id": task.task_id,
                "position": r.position,
                "at": r.at,
                "day": r.at.date().isoformat(),
                "provider": r.provider,
                "model": r.model,
                "tokens_in": r.tokens_in,
                "tokens_out": r.tokens_out,
                "cache_writes": r.cache_writes,
                "cache_reads": r.cache_reads,
                "cost_usd": r.cost_usd,
            }
            for r in task.requests
        ]
        async with self.registry.db.write() as session:
            await session.execute(
                delete(RequestRow).where(RequestRow.tenant == tenant, RequestRow.task_id == task.task_id)
            )
            if rows:
                await session.execute(insert(RequestRow), rows)
            await session.execute(
                delete(TaskRow).where(TaskRow.tenant == tenant, TaskRow.task_id == task.task_id)
            )
            session.add(
                TaskRow(
                    tenant=tenant,
                    task_id=task.task_id,
                    session_id=session_id,
                    title=task.title,
                    fingerprint=stamp,
                    started_at=task.started_at,
                    ended_at=task.ended_at,
                    messages=len(task.messages),
                    episodes=episodes,
                    requests=len(rows),
                    imported_at=run_at,
                )
            )
        result.requests += len(rows)

    async def _episodes(self, tenant: str, task: ParsedTask, session_id: str, problem: Any) -> int:
        episodic = self.registry.memory_types.get("episodic")
        if not isinstance(episodic, PortableMemory):
            return 0
        now = utcnow()
        records = [
            {
                "record": "episode",
                "id": str(uuid.uuid5(EPISODE_IDS, f"{tenant}\0{task.task_id}\0{m.position}")),
                "content": m.text,
                "occurred_at": m.at,
                "session_id": session_id,
                "actor": "cline" if m.role == "assistant" else "user",
                "role": m.role,
                "importance": 0.5,
                "metadata": {"source": "cline", "task_id": task.task_id, "message": m.position},
                "created_at": now,
                "updated_at": now,
            }
            for m in task.messages
        ]
        written = 0
        for start in range(0, len(records), EPISODE_BATCH):
            batch = records[start : start + EPISODE_BATCH]
            for record, error in zip(batch, await episodic.import_records(tenant, batch), strict=True):
                if error is None:
                    written += 1
                else:
                    problem(task.task_id, HISTORY, f"message {record['metadata']['message']}: {error}")
        return written

    async def usage(
        self,
        tenant: str,
        group_by: Literal["task", "day", "model"],
        *,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> UsagePage:
        key = {"task": RequestRow.task_id, "day": RequestRow.day, "model": RequestRow.model}[group_by]
        query = select(
            key,
            func.count(),
            func.sum(RequestRow.tokens_in),
            func.sum(RequestRow.tokens_out),
            func.sum(RequestRow.cache_writes),
            func.sum(RequestRow.cache_reads),
            func.sum(RequestRow.cost_usd),
        ).where(RequestRow.tenant == tenant)
        if since is not None:
            query = query.where(RequestRow.at >= since)
        if until is not None:
            query = query.where(RequestRow.at < until)
        async with self.registry.db.read() as session:
            rows = (await session.execute(query.group_by(key).order_by(key))).all()
        groups = [
            Usage(
                key=str(r[0]),
                requests=int(r[1]),
                tokens_in=int(r[2] or 0),
                tokens_out=int(r[3] or 0),
                cache_writes=int(r[4] or 0),
                cache_reads=int(r[5] or 0),
                cost_usd=round(float(r[6] or 0.0), 6),
            )
            for r in rows
        ]
        totals = Usage(
            key="total",
            requests=sum(g.requests for g in groups),
            tokens_in=sum(g.tokens_in for g in groups),
            tokens_out=sum(g.tokens_out for g in groups),
            cache_writes=sum(g.cache_writes for g in groups),
            cache_reads=sum(g.cache_reads for g in groups),
            cost_usd=round(sum(g.cost_usd for g in groups), 6),
        )
        page = page_of_sequence(groups, limit, cursor)
        return UsagePage(group_by=group_by, items=page.items, next_cursor=page.next_cursor, totals=totals)


async def start(registry: Registry) -> ClineService:
    service = ClineService(registry)
    registry.provide(SERVICE, service, plugin=SERVICE)
    return service
