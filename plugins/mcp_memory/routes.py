from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from mnemogate.core.dependencies import PageCursor, PageLimit, PrincipalDep, RegistryDep
from mnemogate.core.pagination import Page
from mnemogate.plugins.mcp_memory.models import (
    AdvancedStats,
    CleanupRequest,
    CleanupResult,
    ClusterRequest,
    ClusterResult,
    CompressRequest,
    CompressResult,
    ServerMemories,
    SessionMemory,
    SimilarityRequest,
    SimilarityResult,
    SimilarSessions,
    Stats,
    Stored,
    StoreRequest,
)
from mnemogate.plugins.mcp_memory.service import SERVICE, MemoryInsights


async def get_insights(registry: RegistryDep) -> MemoryInsights:
    return registry.services[SERVICE]


Insights = Annotated[MemoryInsights, Depends(get_insights)]
# Session ids as episodes carry them: the gateway's UUIDs or any label an agent chose.
SessionId = Annotated[str, Path(min_length=1, max_length=128)]

reads = APIRouter()
writes = APIRouter()


@reads.get(
    "/api/sessions/{session_id}/memory", summary="A session's episodes and the memories injected into it"
)
async def session_memory(
    session_id: SessionId,
    principal: PrincipalDep,
    insights: Insights,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> SessionMemory:
    return await insights.session_memory(principal.tenant, session_id, limit, cursor)


@reads.get(
    "/api/memory/stats", summary="Memories by type (archived, never recalled, accesses), sessions, captures"
)
async def stats(principal: PrincipalDep, insights: Insights) -> Stats:
    return await insights.stats(principal.tenant)


@reads.get("/api/memory/stats/advanced", summary="Age and access distributions, duplication, clusters, decay")
async def advanced_stats(principal: PrincipalDep, insights: Insights) -> AdvancedStats:
    return await insights.advanced_stats(principal.tenant)


@reads.get("/api/memory/servers", summary="MCP servers with memories (captured tool calls), most first")
async def servers(
    principal: PrincipalDep, insights: Insights, limit: PageLimit = 50, cursor: PageCursor = None
) -> Page[ServerMemories]:
    return await insights.servers(principal.tenant, limit, cursor)


@reads.get("/api/memory/all-servers", summary="Every configured MCP server with its memory counts")
async def all_servers(
    principal: PrincipalDep, insights: Insights, limit: PageLimit = 50, cursor: PageCursor = None
) -> Page[ServerMemories]:
    return await insights.all_servers(principal.tenant, limit, cursor)


@reads.post("/api/memory/similarity", summary="Similarity of two texts, or stored memories like a text")
async def similarity(
    body: SimilarityRequest, principal: PrincipalDep, insights: Insights
) -> SimilarityResult:
    return await insights.similarity(principal.tenant, body)


@reads.get("/api/memory/frequent", summary="Frequent tool sequences (consolidation's patterns), most first")
async def frequent(
    principal: PrincipalDep,
    insights: Insights,
    min_support: Annotated[int, Query(ge=1, le=1_000_000, description="occurrences at least")] = 2,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Page[Any]:
    return await insights.frequent(principal.tenant, min_support, limit, cursor)


@reads.post("/api/memory/cluster/{session_id}", summary="A session's episodes in labelled clusters")
async def cluster(
    session_id: SessionId, principal: PrincipalDep, insights: Insights, body: ClusterRequest | None = None
) -> ClusterResult:
    return await insights.cluster_session(principal.tenant, session_id, body.threshold if body else None)


@reads.get("/api/memory/similar/{session_id}", summary="Sessions whose episodes are most like this session's")
async def similar(
    session_id: SessionId,
    principal: PrincipalDep,
    insights: Insights,
    k: Annotated[int, Query(ge=1, le=100, description="sessions returned")] = 10,
) -> SimilarSessions:
    return await insights.similar_sessions(principal.tenant, session_id, k)


@writes.post("/api/memory/store", status_code=201, summary="Store a memory (episode, fact or skill)")
async def store(body: StoreRequest, principal: PrincipalDep, insights: Insights) -> Stored:
    return await insights.store(principal.tenant, body)


@writes.post(
    "/api/memory/compress", summary="Merge near-duplicate episodes and summarise clusters (dry run first)"
)
async def compress(
    principal: PrincipalDep, insights: Insights, body: CompressRequest | None = None
) -> CompressResult:
    return await insights.compress(principal.tenant, body or CompressRequest())


@writes.post("/api/memory/cleanup", summary="Delete expired, duplicate and orphaned episodes (dry run first)")
async def cleanup(
    principal: PrincipalDep, insights: Insights, body: CleanupRequest | None = None
) -> CleanupResult:
    return await insights.cleanup(principal.tenant, body or CleanupRequest())


@writes.post(
    "/api/memory/promote-patterns/{session_id}",
    summary="Promote a session's recurring names, relations and tool sequences into memory (consolidation)",
)
async def promote_patterns(
    session_id: SessionId, principal: PrincipalDep, insights: Insights
) -> dict[str, Any]:
    return await insights.promote(principal.tenant, session_id)
