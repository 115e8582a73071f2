"""Mem0's two HTTP APIs: the OSS REST server's (at the root, no trailing slashes) and the
platform API that ``mem0ai``'s ``MemoryClient`` calls (versioned, trailing slashes). Both are
thin: they translate Mem0's parameters and shapes, the service does the work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import StrictBool

from mnemogate.core.dependencies import PrincipalDep, RegistryDep
from mnemogate.core.errors import BadRequest
from mnemogate.plugins.mem0_compat.errors import MEM0_ERRORS
from mnemogate.plugins.mem0_compat.filters import compile_filter
from mnemogate.plugins.mem0_compat.models import (
    AddRequest,
    Batch,
    EntityType,
    FeedbackRequest,
    PlatformAdd,
    PlatformList,
    Scope,
    SearchRequest,
    UpdateRequest,
)
from mnemogate.plugins.mem0_compat.service import KIND, OFFLINE, Found, Mem0Service


def get_service(registry: RegistryDep) -> Mem0Service:
    return registry.memory_types[KIND]


Mem0 = Annotated[Mem0Service, Depends(get_service)]
Ident = Annotated[str, Query(min_length=1, max_length=128)]
MemoryId = uuid.UUID
Dict = dict[str, Any]

oss_reads = APIRouter(responses=MEM0_ERRORS)
oss_writes = APIRouter(responses=MEM0_ERRORS)
oss_admin = APIRouter(responses=MEM0_ERRORS)
platform_reads = APIRouter(responses=MEM0_ERRORS)
platform_writes = APIRouter(responses=MEM0_ERRORS)

OSS_FIELDS = ("user_id", "agent_id", "run_id", "actor_id", "role")


# -- shapes --------------------------------------------------------------------------------------


def oss_item(row: Dict, found: Found | None = None, explain: bool = False) -> Dict:
    """A memory as Mem0's OSS library returns it: identity fields only when set."""
    item: Dict = {
        "id": row["id"],
        "memory": row["memory"],
        "hash": row["hash"],
        "metadata": row["metadata"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    item.update({name: row[name] for name in OSS_FIELDS if row[name] is not None})
    if row["expiration_date"] is not None:
        item["expiration_date"] = row["expiration_date"]
    if found is not None:
        item["score"] = found.score
        if explain:
            item["score_details"] = found.parts
    return item


def platform_item(row: Dict, found: Found | None = None) -> Dict:
    """A memory as the platform API returns it: every field, null when unset."""
    item = {
        name: row[name]
        for name in (
            "id",
            "memory",
            "user_id",
            "agent_id",
            "app_id",
            "run_id",
            "actor_id",
            "role",
            "hash",
            "metadata",
            "categories",
            "immutable",
            "expiration_date",
            "created_at",
            "updated_at",
        )
    }
    if found is not None:
        item["score"] = found.score
    return item


def _scope_filters(scope: Scope, filters: Dict | None) -> Dict:
    """Mem0 merges top-level user_id/agent_id/run_id (and app_id) into the filters."""
    merged = dict(filters or {})
    for name in ("user_id", "agent_id", "run_id", "app_id"):
        value = getattr(scope, name)
        if value is not None:
            merged[name] = value
    return merged


def _identity_query(**given: str | None) -> Dict:
    wanted = {name: value for name, value in given.items() if value is not None}
    if not wanted:
        raise BadRequest("At least one identifier is required.")
    return wanted


def _changes(body: UpdateRequest) -> Dict:
    changes = body.model_dump(include=body.model_fields_set - {"timestamp"})
    if not changes:
        raise BadRequest("give text, metadata or expiration_date")
    return changes


# -- Mem0 OSS REST server --------------------------------------------------------------------------


@oss_writes.post("/memories", summary="Create memories (Mem0)")
async def add_memories(body: AddRequest, principal: PrincipalDep, mem0: Mem0) -> Dict:
    metadata = dict(body.metadata or {})
    if body.memory_type is not None:
        metadata.setdefault("memory_type", body.memory_type)
    results = await mem0.add(
        principal,
        body.messages,
        body,
        metadata=metadata,
        infer=body.infer,
        expiration_date=body.expiration_date,
        prompt=body.prompt,
    )
    return {"results": results}


@oss_reads.get("/memories", summary="Get memories (Mem0)")
async def get_all_memories(
    principal: PrincipalDep,
    mem0: Mem0,
    user_id: Ident = None,
    agent_id: Ident = None,
    run_id: Ident = None,
    top_k: Annotated[int | None, Query(ge=1, le=1000)] = None,
    show_expired: bool = False,
) -> Dict:
    spec = _identity_query(user_id=user_id, agent_id=agent_id, run_id=run_id)
    rows = await mem0.list(principal.tenant, compile_filter(spec), show_expired=show_expired)
    return {"results": [oss_item(r) for r in rows[: top_k or mem0.settings.default_top_k]]}


@oss_reads.get("/memories/{memory_id:uuid}", summary="Get a memory (Mem0)")
async def get_memory(memory_id: MemoryId, principal: PrincipalDep, mem0: Mem0) -> Dict:
    return oss_item(await mem0.get(principal.tenant, str(memory_id)))


@oss_writes.put("/memories/{memory_id:uuid}", summary="Update a memory (Mem0)")
async def update_memory(
    memory_id: MemoryId, body: UpdateRequest, principal: PrincipalDep, mem0: Mem0
) -> Dict:
    await mem0.update(principal.tenant, str(memory_id), _changes(body))
    return {"message": "Memory updated successfully!"}


@oss_reads.get("/memories/{memory_id:uuid}/history", summary="Get memory history (Mem0)")
async def memory_history(memory_id: MemoryId, principal: PrincipalDep, mem0: Mem0) -> list[Dict]:
    return await mem0.history(principal.tenant, str(memory_id))


@oss_writes.delete("/memories/{memory_id:uuid}", summary="Delete a memory (Mem0)")
async def delete_memory(memory_id: MemoryId, principal: PrincipalDep, mem0: Mem0) -> Dict:
    await mem0.delete(principal.tenant, str(memory_id))
    return {"message": "Memory deleted successfully"}


@oss_writes.delete("/memories", summary="Delete all memories of a user, agent or run (Mem0)")
async def delete_all_memories(
    principal: PrincipalDep, mem0: Mem0, user_id: Ident = None, agent_id: Ident = None, run_id: Ident = None
) -> Dict:
    spec = _identity_query(user_id=user_id, agent_id=agent_id, run_id=run_id)
    await mem0.delete_matching(principal.tenant, spec)
    return {"message": "All relevant memories deleted"}


@oss_reads.post("/search", summary="Search memories (Mem0)")
async def search_memories(body: SearchRequest, principal: PrincipalDep, mem0: Mem0) -> Dict:
    found = await mem0.search(
        principal.tenant,
        body.query,
        compile_filter(_scope_filters(body, body.filters)),
        top_k=body.top_k,
        threshold=body.threshold,
        show_expired=body.show_expired,
    )
    return {"results": [oss_item(f.row, f, body.explain) for f in found]}


@oss_writes.post("/reset", summary="Delete every memory of the caller's tenant (Mem0)")
async def reset_memories(principal: PrincipalDep, mem0: Mem0) -> Dict:
    await mem0.reset(principal.tenant)
    return {"message": "All memories reset"}


async def _configuration(registry: Any, mem0: Mem0Service, tenant: str) -> Dict:
    config = await mem0.config(tenant)
    engine = registry.services["memory"]
    model = config.get("llm_model") or mem0.settings.llm_model
    return {
        "version": "v1.1",
        "llm": {"provider": "gateway", "config": {"model": model}}
        if model not in ("", OFFLINE)
        else {"provider": OFFLINE},
        "embedder": {
            "provider": registry.plugin_settings("memory").embedder,
            "config": {"model": engine.embedder.name, "embedding_dims": engine.embedder.dim},
        },
        "vector_store": {"provider": registry.db.dialect, "config": {"collection_name": KIND}},
        "custom_fact_extraction_prompt": config.get("prompt"),
        "infer": {
            "duplicate_similarity": mem0.settings.duplicate_similarity,
            "update_similarity": mem0.settings.update_similarity,
        },
    }


@oss_reads.get("/configure", summary="The memory configuration in Mem0's terms (no secrets)")
async def get_configuration(principal: PrincipalDep, registry: RegistryDep, mem0: Mem0) -> Dict:
    return await _configuration(registry, mem0, principal.tenant)


@oss_reads.get("/configure/providers", summary="What can be configured: LLMs, embedders, stores")
async def get_providers(registry: RegistryDep) -> Dict:
    gateway = registry.services.get("gateway")
    models = sorted(f"{m.provider}/{m.id}" for m in gateway.enabled_models()) if gateway is not None else []
    return {
        "llm": ["offline", *models],
        "embedder": sorted(registry.embedders),
        "vector_store": sorted(registry.storage_backends),
    }


@oss_admin.post("/configure", summary="Configure fact extraction for the tenant (Mem0)")
async def set_configuration(
    config: Annotated[Dict, Body()], principal: PrincipalDep, registry: RegistryDep, mem0: Mem0
) -> Dict:
    fixed = sorted(set(config) & {"embedder", "vector_store", "graph_store", "history_db_path"})
    if fixed:
        raise BadRequest(
            f"{', '.join(fixed)} are set by mnemogate's own configuration, not through /configure"
        )
    unknown = sorted(set(config) - {"llm", "custom_fact_extraction_prompt", "version"})
    if unknown:
        raise BadRequest(f"unknown configuration keys: {', '.join(unknown)}")
    values: Dict = {}
    llm = config.get("llm")
    if llm is not None:
        model = (llm.get("config") or {}).get("model") if isinstance(llm, dict) else None
        if isinstance(llm, dict) and llm.get("provider") == OFFLINE:
            model = OFFLINE
        if not isinstance(model, str):
            raise BadRequest('llm: give {"provider": "offline"} or {"config": {"model": "provider/model"}}')
        if model != OFFLINE:
            gateway = registry.services.get("gateway")
            if gateway is None:
                raise BadRequest("no gateway runs: only the offline extractor is available")
            gateway.targets(model)  # refuses an unknown model now rather than at the next add
        values["llm_model"] = model
    prompt = config.get("custom_fact_extraction_prompt")
    if prompt is not None:
        if not isinstance(prompt, str) or len(prompt) > 20_000:
            raise BadRequest("custom_fact_extraction_prompt must be a string of at most 20000 characters")
        values["prompt"] = prompt
    await mem0.configure(principal.tenant, values)
    return {"message": "Configuration set successfully"}


@oss_reads.get("/entities", summary="Users, agents, apps and runs with memories (Mem0)")
async def list_entities(principal: PrincipalDep, mem0: Mem0) -> Dict:
    return {"results": await mem0.entities(principal.tenant)}


@oss_writes.delete("/entities/{entity_type}/{entity_id}", summary="Delete an entity's memories (Mem0)")
async def delete_entity(
    entity_type: EntityType,
    entity_id: Annotated[str, Path(min_length=1, max_length=128)],
    principal: PrincipalDep,
    mem0: Mem0,
) -> Dict:
    await mem0.delete_entity(principal.tenant, entity_type, entity_id)
    return {"message": "Entity deleted successfully."}


# -- Mem0 platform API (mem0ai's MemoryClient) -------------------------------------------------------


@platform_reads.get("/v1/ping/", summary="Validate the API key (mem0ai calls it on construction)")
async def ping(principal: PrincipalDep, mem0: Mem0) -> Dict:
    return {
        "status": "ok",
        "message": "API key is valid",
        "org_id": mem0.settings.org_id,
        "project_id": mem0.settings.project_id,
        "user_email": None,
        "tenant": principal.tenant,
    }


def _platform_scope(body: PlatformAdd) -> Scope:
    filters = body.filters or {}
    values = {}
    for name in ("user_id", "agent_id", "run_id", "app_id"):
        value = getattr(body, name) or filters.get(name)
        if value is not None and not (isinstance(value, str) and 0 < len(value) <= 128):
            raise BadRequest(f"{name} must be a string of 1 to 128 characters")
        values[name] = value
    return Scope(**values)


@platform_writes.post("/v3/memories/add/", summary="Add memories (Mem0 platform)")
async def platform_add(body: PlatformAdd, principal: PrincipalDep, mem0: Mem0) -> Dict:
    created = datetime.fromtimestamp(body.timestamp, UTC) if body.timestamp is not None else None
    results = await mem0.add(
        principal,
        body.messages,
        _platform_scope(body),
        metadata=body.metadata,
        infer=body.infer,
        expiration_date=body.expiration_date,
        created_at=created,
        immutable=body.immutable,
        prompt=body.custom_instructions,
    )
    return {"results": results}


def _list_spec(body: PlatformList) -> Dict:
    parts: list[Dict] = [body.filters] if body.filters else []
    if body.start_date is not None:
        parts.append({"created_at": {"gte": body.start_date}})
    if body.end_date is not None:
        parts.append({"created_at": {"lte": body.end_date}})
    if body.categories:
        parts.append({"categories": {"in": body.categories}})
    return {"AND": parts} if len(parts) > 1 else (parts[0] if parts else {})


@platform_reads.post("/v3/memories/", summary="List memories with filters, by page (Mem0 platform)")
async def platform_list(
    request: Request,
    principal: PrincipalDep,
    mem0: Mem0,
    body: PlatformList | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Dict:
    body = body or PlatformList()
    rows = await mem0.list(principal.tenant, compile_filter(_list_spec(body)), show_expired=body.show_expired)
    start = (page - 1) * page_size
    chunk = rows[start : start + page_size]
    more = start + page_size < len(rows)
    return {
        "count": len(rows),
        "next": str(request.url.include_query_params(page=page + 1, page_size=page_size)) if more else None,
        "previous": str(request.url.include_query_params(page=page - 1, page_size=page_size))
        if page > 1
        else None,
        "results": [platform_item(r) for r in chunk],
    }


class PlatformSearch(SearchRequest):
    categories: list[str] | None = None
    rerank: StrictBool = False


@platform_reads.post("/v3/memories/search/", summary="Search memories (Mem0 platform)")
async def platform_search(body: PlatformSearch, principal: PrincipalDep, mem0: Mem0) -> Dict:
    spec = _scope_filters(body, body.filters)
    if body.categories:
        spec = (
            {"AND": [spec, {"categories": {"in": body.categories}}]}
            if spec
            else {"categories": {"in": body.categories}}
        )
    found = await mem0.search(
        principal.tenant,
        body.query,
        compile_filter(spec),
        top_k=body.top_k,
        threshold=body.threshold,
        show_expired=body.show_expired,
    )
    return {"results": [platform_item(f.row, f) for f in found]}


@platform_reads.get("/v1/memories/{memory_id:uuid}/", summary="Get a memory (Mem0 platform)")
async def platform_get(memory_id: MemoryId, principal: PrincipalDep, mem0: Mem0) -> Dict:
    return platform_item(await mem0.get(principal.tenant, str(memory_id)))


@platform_writes.put("/v1/memories/{memory_id:uuid}/", summary="Update a memory (Mem0 platform)")
async def platform_update(
    memory_id: MemoryId, body: UpdateRequest, principal: PrincipalDep, mem0: Mem0
) -> Dict:
    return platform_item(await mem0.update(principal.tenant, str(memory_id), _changes(body)))


@platform_writes.delete("/v1/memories/{memory_id:uuid}/", summary="Delete a memory (Mem0 platform)")
async def platform_delete(memory_id: MemoryId, principal: PrincipalDep, mem0: Mem0) -> Dict:
    await mem0.delete(principal.tenant, str(memory_id))
    return {"message": "Memory deleted successfully!"}


@platform_writes.delete("/v1/memories/", summary="Delete the memories of a user, agent, app or run")
async def platform_delete_all(
    principal: PrincipalDep,
    mem0: Mem0,
    user_id: Ident = None,
    agent_id: Ident = None,
    app_id: Ident = None,
    run_id: Ident = None,
) -> Dict:
    spec = _identity_query(user_id=user_id, agent_id=agent_id, app_id=app_id, run_id=run_id)
    await mem0.delete_matching(principal.tenant, spec)
    return {"message": "Memories deleted successfully!"}


@platform_reads.get("/v1/memories/{memory_id:uuid}/history/", summary="A memory's history (Mem0 platform)")
async def platform_history(memory_id: MemoryId, principal: PrincipalDep, mem0: Mem0) -> list[Dict]:
    return await mem0.history(principal.tenant, str(memory_id))


@platform_reads.get("/v1/entities/", summary="Users, agents, apps and runs (Mem0 platform)")
async def platform_entities(principal: PrincipalDep, mem0: Mem0) -> Dict:
    found = await mem0.entities(principal.tenant)
    owner = {"owner": principal.tenant, "organization": mem0.settings.org_id, "metadata": {}}
    return {"results": [{**entity, **owner} for entity in found]}


@platform_writes.delete("/v2/entities/{entity_type}/{entity_id}/", summary="Delete an entity's memories")
async def platform_delete_entity(
    entity_type: EntityType,
    entity_id: Annotated[str, Path(min_length=1, max_length=128)],
    principal: PrincipalDep,
    mem0: Mem0,
) -> Dict:
    await mem0.delete_entity(principal.tenant, entity_type, entity_id)
    return {"message": "Entity deleted successfully!"}


@platform_writes.put("/v1/batch/", summary="Update up to 1000 memories (Mem0 platform)")
async def platform_batch_update(body: Batch, principal: PrincipalDep, mem0: Mem0) -> Dict:
    changes = [
        (item.memory_id, item.model_dump(include=item.model_fields_set - {"memory_id"}))
        for item in body.memories
    ]
    await mem0.update_many(principal.tenant, changes)
    return {"message": f"Successfully updated {len(changes)} memories"}


@platform_writes.delete("/v1/batch/", summary="Delete up to 1000 memories (Mem0 platform)")
async def platform_batch_delete(body: Batch, principal: PrincipalDep, mem0: Mem0) -> Dict:
    deleted = await mem0.delete_ids(principal.tenant, [item.memory_id for item in body.memories])
    return {"message": f"Successfully deleted {deleted} memories"}


@platform_writes.post("/v1/feedback/", summary="Feedback on a memory: weighs it in recall")
async def platform_feedback(body: FeedbackRequest, principal: PrincipalDep, mem0: Mem0) -> Dict:
    await mem0.feedback(principal.tenant, body.memory_id, body.feedback)
    return {"id": body.memory_id, "feedback": body.feedback, "feedback_reason": body.feedback_reason}
