"""The ``memory`` MCP server: Mem0-style memories (add, search, list, get, update, delete,
history) and recall of episodes and skills, each confined to the caller's tenant (the key that
opened the MCP session). Memories go through the ``mem0`` memory type, so what an agent stores
over MCP is what Mem0 clients of the same tenant see, and the other way round."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi.encoders import jsonable_encoder
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from mnemogate.core import __version__
from mnemogate.core.contracts import McpCaller, Principal
from mnemogate.core.errors import AppError
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_memory_server import NAME

READS = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
WRITES = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
DELETES = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)

Ident = Annotated[str | None, Field(min_length=1, max_length=128)]
MemoryId = Annotated[str, Field(min_length=1, max_length=64, description="the memory's id")]
Filters = Annotated[
    dict[str, Any] | None,
    Field(
        description='Mem0 filters, e.g. {"AND": [{"user_id": "alex"}, {"created_at": {"gte": "2025-01-01"}}]}'
    ),
]

PUBLIC_FIELDS = (
    "id",
    "memory",
    "user_id",
    "agent_id",
    "run_id",
    "app_id",
    "metadata",
    "categories",
    "expiration_date",
    "created_at",
    "updated_at",
)


def _memory(row: dict[str, Any], score: float | None = None) -> dict[str, Any]:
    item = jsonable_encoder({name: row[name] for name in PUBLIC_FIELDS})
    if score is not None:
        item["score"] = score
    return item


def _scope(user_id: str | None, agent_id: str | None, run_id: str | None) -> dict[str, str]:
    return {k: v for k, v in {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}.items() if v}


def build(registry: Registry) -> MCPServer:
    server = MCPServer(
        NAME,
        version=__version__,
        instructions=(
            "Long-term memory. Store facts with add_memory, find them with search_memories; "
            "scope them with user_id / agent_id / run_id. recall_episodes finds what happened, "
            "recall_skills how a task was done before."
        ),
    )

    def memories() -> Any:
        service = registry.memory_types.get("mem0")
        if service is None:
            raise ToolError("memories are unavailable: the mem0_compat plugin is disabled")
        return service

    def tenant(ctx: Context) -> str:
        return McpCaller.of(ctx.request_context.request).tenant

    async def guarded(call: Any) -> Any:
        try:
            return await call
        except AppError as exc:
            raise ToolError(exc.message) from None

    @server.tool(annotations=WRITES)
    async def add_memory(
        content: Annotated[str, Field(min_length=1, max_length=20_000, description="what to remember")],
        ctx: Context,
        user_id: Ident = None,
        agent_id: Ident = None,
        run_id: Ident = None,
        metadata: dict[str, Any] | None = None,
        infer: Annotated[bool, Field(description="extract facts and reconcile with stored ones")] = True,
    ) -> dict[str, Any]:
        """Remember something for a user, agent or run (at least one). With infer, the facts in
        the text are reconciled with what is stored: events ADD, UPDATE, DELETE or NONE."""
        caller = McpCaller.of(ctx.request_context.request)
        principal = Principal(tenant=caller.tenant, scopes=frozenset({"write"}))
        events = await guarded(
            memories().add(
                principal,
                [{"role": "user", "content": content}],
                _scope(user_id, agent_id, run_id),
                metadata=metadata,
                infer=infer,
            )
        )
        return {"results": events}

    @server.tool(annotations=READS)
    async def search_memories(
        query: Annotated[str, Field(min_length=1, max_length=10_000)],
        ctx: Context,
        user_id: Ident = None,
        agent_id: Ident = None,
        run_id: Ident = None,
        filters: Filters = None,
        top_k: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        """The memories that best match a query (meaning and keywords), best first, with scores."""
        spec = {**(filters or {}), **_scope(user_id, agent_id, run_id)}
        found = await guarded(memories().search(tenant(ctx), query, spec, top_k=top_k))
        return {"results": [_memory(f.row, f.score) for f in found]}

    @server.tool(annotations=READS)
    async def list_memories(
        ctx: Context,
        user_id: Ident = None,
        agent_id: Ident = None,
        run_id: Ident = None,
        filters: Filters = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """Stored memories, newest first, optionally filtered."""
        spec = {**(filters or {}), **_scope(user_id, agent_id, run_id)}
        rows = await guarded(memories().list(tenant(ctx), spec))
        return {"count": len(rows), "results": [_memory(r) for r in rows[:limit]]}

    @server.tool(annotations=READS)
    async def get_memory(memory_id: MemoryId, ctx: Context) -> dict[str, Any]:
        """One memory by id."""
        return _memory(await guarded(memories().get(tenant(ctx), memory_id)))

    @server.tool(annotations=WRITES)
    async def update_memory(
        memory_id: MemoryId,
        ctx: Context,
        text: Annotated[str | None, Field(min_length=1, max_length=20_000)] = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change a memory's text and/or metadata (the old text stays in its history)."""
        if text is None and metadata is None:
            raise ToolError("give text or metadata")
        changes = {k: v for k, v in {"text": text, "metadata": metadata}.items() if v is not None}
        return _memory(await guarded(memories().update(tenant(ctx), memory_id, changes)))

    @server.tool(annotations=DELETES)
    async def delete_memory(memory_id: MemoryId, ctx: Context) -> dict[str, Any]:
        """Forget a memory (its history keeps the DELETE event)."""
        await guarded(memories().delete(tenant(ctx), memory_id))
        return {"message": "Memory deleted successfully!", "id": memory_id}

    @server.tool(annotations=READS)
    async def memory_history(memory_id: MemoryId, ctx: Context) -> dict[str, Any]:
        """How a memory came to be: its ADD, UPDATE and DELETE events, oldest first."""
        history = await guarded(memories().history(tenant(ctx), memory_id))
        return {"results": jsonable_encoder(history)}

    @server.tool(annotations=READS)
    async def recall_episodes(
        query: Annotated[str, Field(min_length=1, max_length=10_000)],
        ctx: Context,
        user_id: Ident = None,
        agent_id: Ident = None,
        session_id: Ident = None,
        k: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        """Episodes (what happened) that best match a query, by similarity, recency and importance."""
        episodic = registry.memory_types.get("episodic")
        if episodic is None:
            raise ToolError("episodic memory is disabled")
        filters = {
            k: v for k, v in {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}.items() if v
        }
        recalled = await guarded(episodic.recall(tenant(ctx), query, k=k, filters=filters))
        return {"results": [r.model_dump(mode="json", exclude_none=True) for r in recalled]}

    @server.tool(annotations=READS)
    async def recall_skills(
        task: Annotated[str, Field(min_length=1, max_length=10_000, description="what needs doing")],
        ctx: Context,
        user_id: Ident = None,
        agent_id: Ident = None,
        k: Annotated[int, Field(ge=1, le=50)] = 5,
    ) -> dict[str, Any]:
        """Skills (how a task was done before) matching a task, by similarity and success rate."""
        procedural = registry.memory_types.get("procedural")
        if procedural is None:
            raise ToolError("procedural memory is disabled")
        filters = {k: v for k, v in {"user_id": user_id, "agent_id": agent_id}.items() if v}
        matches = await guarded(procedural.recall(tenant(ctx), task, k=k, filters=filters))
        return {"results": [m.model_dump(mode="json", exclude_none=True) for m in matches]}

    return server
