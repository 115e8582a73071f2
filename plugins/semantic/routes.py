import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from mnemogate.core.dependencies import PageCursor, PageLimit, PrincipalDep, RegistryDep
from mnemogate.core.fields import Timestamp
from mnemogate.core.pagination import Page
from mnemogate.plugins.semantic.models import (
    Entity,
    EntityCreate,
    EntitySearch,
    EntityUpdate,
    Relation,
    RelationCreate,
    SearchResult,
    SpreadRequest,
    SpreadResult,
)
from mnemogate.plugins.semantic.service import KIND, EntityService


def get_entities(registry: RegistryDep) -> EntityService:
    return registry.memory_types[KIND]


Entities = Annotated[EntityService, Depends(get_entities)]
Filter = Annotated[str | None, Query(max_length=256)]

reads = APIRouter(prefix="/api/v1/entities")
writes = APIRouter(prefix="/api/v1/entities")


@writes.post("", status_code=201, summary="Create an entity")
async def create(body: EntityCreate, principal: PrincipalDep, entities: Entities) -> Entity:
    return await entities.add(principal.tenant, body)


@reads.get("", summary="List current entities, newest first")
async def list_entities(
    principal: PrincipalDep,
    entities: Entities,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
    type: Filter = None,
    name: Filter = None,
    user_id: Filter = None,
    agent_id: Filter = None,
) -> Page[Entity]:
    filters = {"type": type, "name": name, "user_id": user_id, "agent_id": agent_id}
    return await entities.list(principal.tenant, limit=limit, cursor=cursor, filters=filters)


@writes.post("/relations", status_code=201, summary="Relate two entities with a weighted, typed relation")
async def relate(body: RelationCreate, principal: PrincipalDep, entities: Entities) -> Relation:
    return await entities.relate(principal.tenant, body)


@reads.post("/search", summary="Search entities by similarity and keywords")
async def search(body: EntitySearch, principal: PrincipalDep, entities: Entities) -> SearchResult:
    return SearchResult(items=await entities.search(principal.tenant, body))


@writes.post(
    "/spread-activation", summary="Spread activation from seed entities; strengthens co-activated relations"
)
async def spread_activation(body: SpreadRequest, principal: PrincipalDep, entities: Entities) -> SpreadResult:
    return await entities.spread(principal.tenant, body)


@reads.get("/{entity_id:uuid}", summary="An entity: its current version, or the one held at as_of")
async def get_entity(
    entity_id: uuid.UUID, principal: PrincipalDep, entities: Entities, as_of: Timestamp | None = None
) -> Entity:
    return await entities.get(principal.tenant, str(entity_id), as_of)


@writes.put("/{entity_id:uuid}", summary="Update an entity: records a new version, keeps the old one")
async def update(
    entity_id: uuid.UUID, body: EntityUpdate, principal: PrincipalDep, entities: Entities
) -> Entity:
    return await entities.update(principal.tenant, str(entity_id), body)


@writes.delete(
    "/{entity_id:uuid}", status_code=204, summary="Delete an entity, its history and its relations"
)
async def delete_entity(entity_id: uuid.UUID, principal: PrincipalDep, entities: Entities) -> Response:
    await entities.delete(principal.tenant, str(entity_id))
    return Response(status_code=204)


@reads.get("/{entity_id:uuid}/history", summary="Every version of an entity, newest first")
async def history(
    entity_id: uuid.UUID,
    principal: PrincipalDep,
    entities: Entities,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Page[Entity]:
    return await entities.history(principal.tenant, str(entity_id), limit=limit, cursor=cursor)


@reads.get("/{entity_id:uuid}/relations", summary="Relations of an entity")
async def relations(
    entity_id: uuid.UUID,
    principal: PrincipalDep,
    entities: Entities,
    direction: Literal["out", "in", "both"] = "both",
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Page[Relation]:
    return await entities.relations(
        principal.tenant, str(entity_id), direction=direction, limit=limit, cursor=cursor
    )
