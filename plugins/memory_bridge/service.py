"""Capture and injection: what the gateway's exchanges leave in memory, and what memory gives
back to them.

Both are opt-in. A request's modes come from its ``X-Mnemogate-Memory`` header
(``inject``, ``capture``, both as ``inject,capture``, or ``off``), else from its session's
modes (set through ``PUT /api/sessions/{id}/memory-modes``), else from its API key's, its
tenant's or the server's configured modes; a request with no mode costs a few dict look-ups.

*Injection* runs first in ``chat_request``: the last user message recalls episodic, semantic and
procedural memories of the caller's tenant (and ``user``, when the body names one); the best
ones that fit the token budget go into one system message after the request's own system
messages. Which memories went in is kept in ``ctx.data`` and, after the answer, in the injection
log (``memory_bridge_injections``) and a ``memory.injected`` event on ``/ws/events``.

*Capture* runs in ``chat_response``, off the request path: the turns the request added since
the last answer (user messages, tool results) and the answer itself (text and tool calls)
become episodes of the session. It reads ``ctx.body`` after the whole pipeline (so masking
has replaced secrets by placeholders) and the answer as the provider sent it, before any chunk
filter unmasked it for the client. MCP tool calls of a capturing session (or all of them, when
configured) become episodes with their server, tool, arguments and outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import select

from mnemogate.core import tokens
from mnemogate.core.contracts import ChatContext, EpisodeDraft, McpToolCall, Principal, utcnow
from mnemogate.core.db import new_id
from mnemogate.core.errors import BadRequest, NotFound, describe_exception
from mnemogate.core.pagination import Page, newest_first, page_of_rows
from mnemogate.core.registry import Registry
from mnemogate.plugins.memory_bridge.models import (
    Injected,
    Injection,
    InjectionRow,
    SessionModeRow,
    SessionModesOut,
)
from mnemogate.plugins.memory_bridge.settings import MemoryBridgeSettings

log = logging.getLogger("mnemogate.memory_bridge")

SERVICE = "memory_bridge"
HEADER = "x-mnemogate-memory"
MODES_KEY = "memory.modes"
INJECTED_KEY = "memory.injected"
EVENTS_CHANNEL = "events"
KNOWN_MODES = frozenset({"inject", "capture"})
OFF = frozenset({"off", "none"})
NO_MODES: frozenset[str] = frozenset()
MAX_CONTENT = 100_000  # the episodic type's limit
PREAMBLE = "Relevant memories from earlier conversations (recalled by mnemogate; use them if they help):"
SECTIONS = {
    "semantic": "Known facts:",
    "procedural": "Skills that worked before:",
    "episodic": "Earlier events:",
}
TICK = timedelta(microseconds=1)


def parse_modes(value: str) -> frozenset[str]:
    """The modes an ``X-Mnemogate-Memory`` header asks for."""
    asked = {part.strip().lower() for part in value.split(",") if part.strip()}
    if asked & OFF:
        if asked - OFF:
            raise BadRequest(f"{HEADER}: 'off' cannot be combined with other modes", code="invalid_header")
        return NO_MODES
    unknown = asked - KNOWN_MODES
    if unknown:
        raise BadRequest(
            f"{HEADER}: unknown mode {sorted(unknown)[0][:32]!r} (use inject, capture, both or off)",
            code="invalid_header",
        )
    return frozenset(asked)


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return tokens.message_text(message.get("content"))
    return ""


def new_turns(messages: list[Any]) -> list[dict[str, Any]]:
    """What a request adds to its conversation: the user and tool messages after the last answer
    (agents resend the whole history with every request)."""
    turns: list[dict[str, Any]] = []
    for message in reversed(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "assistant":
            break
        if role in ("user", "tool"):
            turns.append(message)
    return turns[::-1]


@dataclass(frozen=True, slots=True)
class Candidate:
    type: str
    id: str
    score: float
    line: str


def _fact_line(found: Any) -> str:
    entity = found.entity
    facts = "; ".join(f"{key}: {value}" for key, value in (entity.attributes or {}).items())
    text = " ".join(part for part in (entity.description, facts) if part)
    return f"{entity.name} ({entity.type})" + (f": {text}" if text else "")


def _skill_line(match: Any) -> str:
    skill = match.skill
    steps = " -> ".join(skill.steps)
    rate = skill.stats.success_rate
    record = (
        f" [{skill.stats.successes}/{skill.stats.successes + skill.stats.failures} succeeded]" if rate else ""
    )
    return f"{skill.name}: {skill.description}" + (f" (steps: {steps})" if steps else "") + record


def _event_line(recalled: Any) -> str:
    episode = recalled.episode
    who = f"{episode.actor}: " if episode.actor else ""
    return f"{episode.occurred_at.date().isoformat()} {who}{episode.content}"


def _candidates(kind: str, results: list[Any], session_id: str | None) -> list[Candidate]:
    if kind == "semantic":
        return [Candidate(kind, r.entity.id, r.score, _fact_line(r)) for r in results]
    if kind == "procedural":
        return [Candidate(kind, r.skill.id, r.score, _skill_line(r)) for r in results]
    # The episodes of this very session are in the conversation already.
    return [
        Candidate(kind, r.episode.id, r.score, _event_line(r))
        for r in results
        if session_id is None or r.episode.session_id != session_id
    ]


class MemoryBridge:
    def __init__(self, registry: Registry, settings: MemoryBridgeSettings) -> None:
        self.registry = registry
        self.settings = settings
        self.default_modes = frozenset(settings.default_modes)
        self.tenant_modes = {tenant: frozenset(m) for tenant, m in settings.tenant_modes.items()}
        self.key_modes = {key: frozenset(m) for key, m in settings.key_modes.items()}
        self.configured = bool(self.default_modes or self.tenant_modes or self.key_modes)
        # (tenant, session id) -> modes, read at start and kept in step by set_session_modes.
        self.session_modes: dict[tuple[str, str], frozenset[str]] = {}
        # Sessions whose MCP tool calls are captured: those with a capturing chat request.
        self.capturing: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the request path ----------------------------------------------------------------------

    def modes(self, ctx: ChatContext) -> frozenset[str]:
        asked = ctx.headers.get(HEADER)
        if asked is not None:
            return parse_modes(asked)
        if self.session_modes and ctx.session_id:
            chosen = self.session_modes.get((ctx.tenant, ctx.session_id))
            if chosen is not None:
                return chosen
        if not self.configured:
            return NO_MODES
        key = ctx.principal.key_id
        if key is not None and key in self.key_modes:
            return self.key_modes[key]
        return self.tenant_modes.get(ctx.tenant, self.default_modes)

    def before(self, ctx: ChatContext) -> Awaitable[None] | None:
        """The request's modes; work to await only when injection is asked for (a request
        with no mode costs a header look-up, not even a coroutine)."""
        modes = self.modes(ctx)
        if not modes:
            return None
        ctx.data[MODES_KEY] = modes
        if "capture" in modes and ctx.session_id:
            self._remember_capturing(ctx.tenant, ctx.session_id)
        return self.inject(ctx) if "inject" in modes else None

    def _remember_capturing(self, tenant: str, session_id: str) -> None:
        key = (tenant, session_id)
        self.capturing[key] = None
        self.capturing.move_to_end(key)
        while len(self.capturing) > self.settings.captured_sessions_remembered:
            self.capturing.popitem(last=False)

    async def recall(
        self, tenant: str, query: str, *, user_id: str | None = None, session_id: str | None = None
    ) -> list[Candidate]:
        """The memories of every configured type for ``query``, best first."""
        kinds = [k for k in self.settings.inject_types if k in SECTIONS and k in self.registry.memory_types]
        filters = {"user_id": user_id} if user_id else None
        k = self.settings.inject_k

        async def one(kind: str) -> list[Candidate]:
            service = self.registry.memory_types[kind]
            return _candidates(kind, await service.recall(tenant, query, k=k, filters=filters), session_id)

        # All at once: the query is embedded once (the engine's embedder shares a text being
        # embedded), and each type's keyword search runs meanwhile.
        found = await asyncio.gather(*(one(kind) for kind in kinds))
        ranked = [c for group in found for c in group if c.score >= self.settings.inject_min_score]
        ranked.sort(key=lambda c: -c.score)
        return ranked

    async def inject(self, ctx: ChatContext) -> None:
        messages = ctx.body["messages"]
        query = last_user_text(messages)
        if not query.strip():
            return
        user = ctx.body.get("user")
        try:
            ranked = await self.recall(
                ctx.tenant, query, user_id=user if isinstance(user, str) else None, session_id=ctx.session_id
            )
        except Exception as exc:
            # Memory is a help, never a reason to refuse a chat request.
            log.warning(
                "memory injection skipped: %s", describe_exception(exc), extra={"request_id": ctx.request_id}
            )
            return
        chosen, message_tokens = self.within_budget(ranked)
        if not chosen:
            return
        position = next(
            (i for i, m in enumerate(messages) if not (isinstance(m, dict) and m.get("role") == "system")),
            len(messages),
        )
        messages.insert(position, {"role": "system", "content": render(chosen)})
        ctx.data[INJECTED_KEY] = [{"type": c.type, "id": c.id, "score": round(c.score, 6)} for c in chosen]
        ctx.data["memory.injected_tokens"] = message_tokens

    def within_budget(self, ranked: list[Candidate]) -> tuple[list[Candidate], int]:
        """The best candidates whose lines fit the token budget (a long one is skipped, shorter
        ones after it may still fit), with the tokens of the message they make."""
        budget = self.settings.inject_budget_tokens
        used = tokens.PER_MESSAGE + tokens.count_text(PREAMBLE)
        sections: set[str] = set()
        chosen = []
        for candidate in ranked:
            cost = tokens.count_text(candidate.line) + 2  # "- " and the line break
            if candidate.type not in sections:
                cost += tokens.count_text(SECTIONS[candidate.type]) + 1
            if used + cost > budget:
                continue
            used += cost
            sections.add(candidate.type)
            chosen.append(candidate)
        return chosen, used

    # -- after the answer ----------------------------------------------------------------------

    def after(self, ctx: ChatContext) -> None:
        modes = ctx.data.get(MODES_KEY)
        if modes:
            self._spawn(self._after(ctx, modes))

    def tool_called(self, call: McpToolCall) -> None:
        if call.session_id is None and not self.settings.capture_mcp_tool_calls:
            return
        if self.settings.capture_mcp_tool_calls or (call.tenant, call.session_id) in self.capturing:
            self._spawn(self.capture_tool_call(call))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _after(self, ctx: ChatContext, modes: frozenset[str]) -> None:
        try:
            injected = ctx.data.get(INJECTED_KEY)
            if injected:
                await self.log_injection(ctx, injected)
            if "capture" in modes and ctx.status == 200 and ctx.response:
                await self.capture(ctx)
        except Exception as exc:
            log.error(
                "memory capture failed: %s", describe_exception(exc), extra={"request_id": ctx.request_id}
            )

    async def log_injection(self, ctx: ChatContext, injected: list[dict[str, Any]]) -> None:
        row = {
            "id": new_id(),
            "tenant": ctx.tenant,
            "session_id": ctx.session_id,
            "request_id": ctx.request_id,
            "memories": injected,
            "tokens": ctx.data.get("memory.injected_tokens", 0),
            "created_at": ctx.started_at,
        }
        async with self.registry.db.write() as session:
            await session.execute(InjectionRow.__table__.insert(), [row])
        data = {"request_id": ctx.request_id, "session_id": ctx.session_id, "memories": injected}
        await self.registry.events.publish(EVENTS_CHANNEL, "memory.injected", ctx.tenant, data)

    async def capture(self, ctx: ChatContext) -> list[Any]:
        episodes = self.registry.memory_types.get("episodic")
        if episodes is None:
            return []
        user = ctx.body.get("user") if isinstance(ctx.body.get("user"), str) else None
        base = {"source": "gateway", "request_id": ctx.request_id}
        drafts: list[EpisodeDraft] = []
        at = ctx.started_at
        for turn in new_turns(ctx.body.get("messages") or []):
            text = tokens.message_text(turn.get("content"))
            if not text.strip():
                continue
            role = turn["role"]
            meta = dict(base)
            if role == "tool" and isinstance(turn.get("tool_call_id"), str):
                meta["tool_call_id"] = turn["tool_call_id"]
            drafts.append(
                EpisodeDraft(
                    content=text[:MAX_CONTENT],
                    occurred_at=at,
                    session_id=ctx.session_id,
                    user_id=user,
                    actor=user or role,
                    role=role,
                    metadata=meta,
                )
            )
            at += TICK
        answer_meta = {**base, "model": f"{ctx.provider}/{ctx.model}"}
        if ctx.data.get(INJECTED_KEY):
            answer_meta["injected"] = [m["id"] for m in ctx.data[INJECTED_KEY]]
        # The answer is stamped right after its request's turns (the exchange's start, plus a
        # microsecond per episode): capture runs after the client has the answer, possibly after
        # its next request began, so only the start times order a conversation reliably.
        choices = ctx.response.get("choices") if ctx.response else None
        message = (choices[0].get("message") or {}) if choices and isinstance(choices[0], dict) else {}
        text = tokens.message_text(message.get("content"))
        if text.strip():
            drafts.append(
                EpisodeDraft(
                    content=text[:MAX_CONTENT],
                    occurred_at=at,
                    session_id=ctx.session_id,
                    user_id=user,
                    actor="assistant",
                    role="assistant",
                    metadata=answer_meta,
                )
            )
            at += TICK
        for call in message.get("tool_calls") or ():
            function = (call.get("function") or {}) if isinstance(call, dict) else {}
            name, arguments = str(function.get("name") or ""), str(function.get("arguments") or "")
            drafts.append(
                EpisodeDraft(
                    content=f"{name}({arguments})"[:MAX_CONTENT],
                    occurred_at=at,
                    session_id=ctx.session_id,
                    user_id=user,
                    actor="assistant",
                    role="tool_call",
                    metadata={**answer_meta, "tool": name, "tool_call_id": call.get("id")},
                )
            )
            at += TICK
        if not drafts:
            return []
        return await episodes.add_many(ctx.tenant, drafts)

    async def capture_tool_call(self, call: McpToolCall) -> None:
        episodes = self.registry.memory_types.get("episodic")
        if episodes is None:
            return
        name = f"{call.server}/{call.tool}"
        arguments_text, error = self._masked(call, orjson.dumps(call.arguments).decode(), call.error or "")
        content = f"{name}({arguments_text}) -> {call.outcome}" + (f": {error}" if error else "")
        try:
            arguments: Any = orjson.loads(arguments_text)
        except orjson.JSONDecodeError:
            arguments = arguments_text  # a placeholder cut through a JSON escape: kept as text
        draft = EpisodeDraft(
            content=content[:MAX_CONTENT],
            occurred_at=call.at,
            session_id=call.session_id,
            actor=name,
            role="tool",
            outcome="success" if call.outcome == "ok" else "failure",
            metadata={
                "source": "mcp",
                "server": call.server,
                "tool": call.tool,
                "arguments": arguments,
                "outcome": call.outcome,
                "call_id": call.id,
                "request_id": call.request_id,
                "latency_ms": round(call.latency_ms, 3),
            },
        )
        try:
            await episodes.add_many(call.tenant, [draft])
        except Exception as exc:
            log.error("capturing an MCP tool call failed: %s", describe_exception(exc))

    def _masked(self, call: McpToolCall, *texts: str) -> list[str]:
        """The texts as the sanitizer masks a chat request's (secrets become placeholders that
        admins can reveal), when the sanitizer runs; MCP tool calls never pass its pipeline."""
        sanitizer = self.registry.services.get("sanitizer")
        if sanitizer is None:
            return list(texts)
        probe = ChatContext(
            principal=Principal(tenant=call.tenant, scopes=frozenset()),
            body={"messages": [{"role": "tool", "content": text} for text in texts]},
            session_id=call.session_id,
            request_id=call.request_id,
            registry=self.registry,
        )
        sanitizer.mask(probe)
        return [message["content"] for message in probe.body["messages"]]

    # -- modes per session ---------------------------------------------------------------------

    async def load_session_modes(self) -> None:
        """Read every session's modes (at start, and after a restore replaced the database)."""
        async with self.registry.db.read() as session:
            rows = list(await session.scalars(select(SessionModeRow)))
        self.session_modes = {(r.tenant, r.session_id): frozenset(r.modes) for r in rows}

    async def session_modes_of(self, tenant: str, session_id: str) -> SessionModesOut:
        async with self.registry.db.read() as session:
            row = await session.get(SessionModeRow, (tenant, session_id))
        if row is None:
            return SessionModesOut(session_id=session_id, modes=[], configured=False)
        return SessionModesOut(
            session_id=session_id, modes=row.modes, configured=True, updated_at=row.updated_at
        )

    async def set_session_modes(self, tenant: str, session_id: str, modes: list[str]) -> SessionModesOut:
        chosen = sorted(set(modes))
        now = utcnow()
        async with self.registry.db.write() as session:
            row = await session.get(SessionModeRow, (tenant, session_id))
            if row is None:
                session.add(
                    SessionModeRow(tenant=tenant, session_id=session_id, modes=chosen, updated_at=now)
                )
            else:
                row.modes, row.updated_at = chosen, now
        self.session_modes[(tenant, session_id)] = frozenset(chosen)
        return SessionModesOut(session_id=session_id, modes=chosen, configured=True, updated_at=now)

    async def clear_session_modes(self, tenant: str, session_id: str) -> None:
        async with self.registry.db.write() as session:
            row = await session.get(SessionModeRow, (tenant, session_id))
            if row is None:
                raise NotFound(f"session {session_id} has no memory modes of its own")
            await session.delete(row)
        self.session_modes.pop((tenant, session_id), None)

    # -- reads ---------------------------------------------------------------------------------

    async def injections(
        self, tenant: str, session_id: str | None, *, limit: int, cursor: str | None
    ) -> Page[Injection]:
        query = select(InjectionRow).where(InjectionRow.tenant == tenant)
        if session_id is not None:
            query = query.where(InjectionRow.session_id == session_id)
        query = newest_first(query, InjectionRow.created_at, InjectionRow.id, limit=limit, cursor=cursor)
        async with self.registry.db.read() as session:
            rows = list(await session.scalars(query))
        return page_of_rows(rows, limit, _injection, lambda r: (r.created_at, r.id))


def _injection(row: InjectionRow) -> Injection:
    return Injection(
        id=row.id,
        session_id=row.session_id,
        request_id=row.request_id,
        memories=[Injected(**m) for m in row.memories],
        tokens=row.tokens,
        created_at=row.created_at,
    )


def render(chosen: list[Candidate]) -> str:
    lines = [PREAMBLE]
    for kind, title in SECTIONS.items():
        group = [c for c in chosen if c.type == kind]
        if group:
            lines.append(title)
            lines.extend(f"- {c.line}" for c in group)
    return "\n".join(lines)


async def start(registry: Registry) -> MemoryBridge:
    bridge = MemoryBridge(registry, registry.plugin_settings(SERVICE))
    await bridge.load_session_modes()
    registry.provide(SERVICE, bridge, plugin=SERVICE)
    return bridge
