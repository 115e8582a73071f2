"""Entities and relations.

An update never overwrites: the current version is closed (transaction time ``superseded_at``;
valid time ``valid_to`` when the new facts start) and a new version is recorded, so history and
"as of" reads stay possible. Spreading activation walks weighted relations from seed entities
with a per-hop decay and a threshold; relations whose two ends fired together are strengthened
(Hebbian: dw = rate * a_source * a_target * (1 - w)), which later walks see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mnemogate.core.contracts import IndexFilters, IndexItem, utcnow
from mnemogate.core.db import new_id
from mnemogate.core.errors import Conflict, NotFound, StartupError
from mnemogate.core.pagination import Page, newest_first, page_of_rows
from mnemogate.core.portable import ascending_batches, validate_records
from mnemogate.core.registry import Registry
from mnemogate.plugins.semantic.models import (
    Activated,
    Entity,
    EntityCreate,
    EntityRecord,
    EntitySearch,
    EntityUpdate,
    EntityVersion,
    FoundEntity,
    Relation,
    RelationCreate,
    RelationRecord,
    RelationRow,
    SpreadRequest,
    SpreadResult,
    SpreadStep,
    Strengthened,
)

KIND = "semantic"


def _entity(row: EntityVersion) -> Entity:
    return Entity(
        id=row.entity_id,
        version=row.version,
        name=row.name,
        type=row.type,
        description=row.description,
        attributes=row.attributes or {},
        metadata=row.meta or {},
        user_id=row.user_id,
        agent_id=row.agent_id,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        recorded_at=row.recorded_at,
        superseded_at=row.superseded_at,
    )


def _relation(row: RelationRow) -> Relation:
    return Relation(
        id=row.id,
        source_id=row.source_id,
        target_id=row.target_id,
        type=row.type,
        weight=row.weight,
        activations=row.activations,
        metadata=row.meta or {},
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _index_item(row: EntityVersion) -> IndexItem:
    facts = "; ".join(f"{key}: {value}" for key, value in (row.attributes or {}).items())
    text = " ".join(part for part in (f"{row.name} ({row.type})", row.description, facts) if part)
    return IndexItem(
        id=row.entity_id,
        vector=None,
        text=text,
        attrs={
            "user_id": row.user_id,
            "agent_id": row.agent_id,
            "occurred_at": row.valid_from,
            "metadata": {"type": row.type},
        },
    )


def _entity_record(row: EntityVersion) -> dict[str, Any]:
    return {
        "record": "entity",
        "id": row.entity_id,
        "version_id": row.version_id,
        "version": row.version,
        "name": row.name,
        "type": row.type,
        "description": row.description,
        "attributes": row.attributes or {},
        "metadata": row.meta or {},
        "user_id": row.user_id,
        "agent_id": row.agent_id,
        "valid_from": row.valid_from,
        "valid_to": row.valid_to,
        "recorded_at": row.recorded_at,
        "superseded_at": row.superseded_at,
    }


def _relation_record(row: RelationRow) -> dict[str, Any]:
    return {
        "record": "relation",
        "id": row.id,
        "source_id": row.source_id,
        "target_id": row.target_id,
        "type": row.type,
        "weight": row.weight,
        "activations": row.activations,
        "metadata": row.meta or {},
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _current(tenant: str) -> Any:
    return select(EntityVersion).where(EntityVersion.tenant == tenant, EntityVersion.superseded_at.is_(None))


class EntityService:
    name = KIND
    record_types = ("entity", "relation")

    def __init__(self) -> None:
        self._registry: Registry | None = None

    def start(self, registry: Registry) -> None:
        if "memory" not in registry.services:
            raise StartupError("the semantic plugin needs the memory plugin (it is disabled)")
        self._registry = registry

    @property
    def registry(self) -> Registry:
        assert self._registry is not None, "semantic memory is not started"
        return self._registry

    @property
    def engine(self) -> Any:
        return self.registry.services["memory"]

    # -- entities ------------------------------------------------------------------------------

    async def add(self, tenant: str, item: EntityCreate) -> Entity:
        now = utcnow()
        row = EntityVersion(
            version_id=new_id(),
            entity_id=new_id(),
            tenant=tenant,
            version=1,
            name=item.name,
            type=item.type,
            description=item.description,
            attributes=item.attributes,
            meta=item.metadata,
            user_id=item.user_id,
            agent_id=item.agent_id,
            valid_from=item.valid_from or now,
            valid_to=item.valid_to,
            recorded_at=now,
            superseded_at=None,
        )
        prepared = await self.engine.prepare([_index_item(row)])
        async with self.registry.db.write() as session:
            session.add(row)
            await self.engine.write(session, tenant, KIND, prepared)
        await self.engine.emit(tenant, KIND, "created", [row.entity_id], {"name": row.name})
        return _entity(row)

    async def _current_row(self, session: AsyncSession, tenant: str, entity_id: str) -> EntityVersion:
        row = await session.scalar(_current(tenant).where(EntityVersion.entity_id == entity_id))
        if row is None:
            raise NotFound(f"no entity with id {entity_id}")
        return row

    async def get(self, tenant: str, item_id: str, as_of: datetime | None = None) -> Entity:
        """The current version, or the one this store held at ``as_of`` (transaction time)."""
        async with self.registry.db.read() as session:
            if as_of is None:
                return _entity(await self._current_row(session, tenant, item_id))
            row = await session.scalar(
                select(EntityVersion).where(
                    EntityVersion.tenant == tenant,
                    EntityVersion.entity_id == item_id,
                    EntityVersion.recorded_at <= as_of,
                    or_(EntityVersion.superseded_at.is_(None), EntityVersion.superseded_at > as_of),
                )
            )
        if row is None:
            raise NotFound(f"entity {item_id} had no version at {as_of.isoformat()}")
        return _entity(row)

    async def update(self, tenant: str, item_id: str, changes: EntityUpdate) -> Entity:
        async with self.registry.db.read() as session:
            current = await self._current_row(session, tenant, item_id)
        values = changes.model_dump(exclude_unset=True, exclude_none=True)
        now = utcnow()
        new = EntityVersion(
            version_id=new_id(),
            entity_id=item_id,
            tenant=tenant,
            version=current.version + 1,
            name=values.get("name", current.name),
            type=values.get("type", current.type),
            description=values.get("description", current.description),
            attributes=values.get("attributes", current.attributes),
            meta=values.get("metadata", current.meta),
            user_id=current.user_id,
            agent_id=current.agent_id,
            valid_from=values.get("valid_from", now),
            valid_to=values.get("valid_to"),
            recorded_at=now,
            superseded_at=None,
        )
        prepared = await self.engine.prepare([_index_item(new)])
        async with self.registry.db.write() as session:
            old = await self._current_row(session, tenant, item_id)
            if old.version != current.version:
                raise Conflict(f"entity {item_id} changed meanwhile; retry")
            old.superseded_at = now
            if old.valid_to is None or old.valid_to > new.valid_from:
                old.valid_to = new.valid_from
            await session.flush()
            session.add(new)
            await self.engine.write(session, tenant, KIND, prepared)
        await self.engine.emit(tenant, KIND, "updated", [item_id], {"version": new.version})
        return _entity(new)

    async def delete(self, tenant: str, item_id: str) -> None:
        async with self.registry.db.write() as session:
            await self._current_row(session, tenant, item_id)
            await session.execute(
                delete(EntityVersion).where(
                    EntityVersion.tenant == tenant, EntityVersion.entity_id == item_id
                )
            )
            await session.execute(
                delete(RelationRow).where(
                    RelationRow.tenant == tenant,
                    or_(RelationRow.source_id == item_id, RelationRow.target_id == item_id),
                )
            )
            await self.engine.remove(session, tenant, KIND, [item_id])
        await self.engine.emit(tenant, KIND, "deleted", [item_id])

    async def list(
        self, tenant: str, *, limit: int, cursor: str | None, filters: dict[str, Any] | None = None
    ) -> Page[Entity]:
        filters = filters or {}
        query = _current(tenant)
        for name in ("type", "name", "user_id", "agent_id"):
            if filters.get(name) is not None:
                query = query.where(getattr(EntityVersion, name) == filters[name])
        query = newest_first(
            query, EntityVersion.recorded_at, EntityVersion.entity_id, limit=limit, cursor=cursor
        )
        async with self.registry.db.read() as session:
            rows = list(await session.scalars(query))
        return page_of_rows(rows, limit, _entity, lambda r: (r.recorded_at, r.entity_id))

    async def history(self, tenant: str, item_id: str, *, limit: int, cursor: str | None) -> Page[Entity]:
        query = select(EntityVersion).where(
            EntityVersion.tenant == tenant, EntityVersion.entity_id == item_id
        )
        query = newest_first(
            query, EntityVersion.recorded_at, EntityVersion.version_id, limit=limit, cursor=cursor
        )
        async with self.registry.db.read() as session:
            rows = list(await session.scalars(query))
        if not rows and cursor is None:
            raise NotFound(f"no entity with id {item_id}")
        return page_of_rows(rows, limit, _entity, lambda r: (r.recorded_at, r.version_id))

    # -- export and import (PortableMemory) ----------------------------------------------------

    async def export_records(self, tenant: str) -> AsyncIterator[list[dict[str, Any]]]:
        """Every entity version (history included), then the relations."""
        versions = select(EntityVersion).where(EntityVersion.tenant == tenant)
        db = self.registry.db
        async for rows in ascending_batches(
            db, versions, EntityVersion.recorded_at, EntityVersion.version_id
        ):
            yield [_entity_record(row) for row in rows]
        relations = select(RelationRow).where(RelationRow.tenant == tenant)
        async for rows in ascending_batches(db, relations, RelationRow.created_at, RelationRow.id):
            yield [_relation_record(row) for row in rows]

    async def import_records(self, tenant: str, records: Sequence[dict[str, Any]]) -> list[str | None]:
        """Upsert entity versions (by version id) and relations (by id) in one transaction:
        entities first, so relations may point at entities of the same batch."""
        errors: list[str | None] = [None] * len(records)
        entities = validate_records(
            EntityRecord,
            [(p, r) for p, r in enumerate(records) if r.get("record") == "entity"],
            errors,
            key="version_id",
        )
        relations = validate_records(
            RelationRecord, [(p, r) for p, r in enumerate(records) if r.get("record") != "entity"], errors
        )
        versions = [
            EntityVersion(
                version_id=version_id,
                entity_id=str(record.id),
                tenant=tenant,
                version=record.version,
                name=record.name,
                type=record.type,
                description=record.description,
                attributes=record.attributes,
                meta=record.metadata,
                user_id=record.user_id,
                agent_id=record.agent_id,
                valid_from=record.valid_from,
                valid_to=record.valid_to,
                recorded_at=record.recorded_at,
                superseded_at=record.superseded_at,
            )
            for version_id, (_, record) in entities.items()
        ]
        prepared = await self.engine.prepare([_index_item(v) for v in versions if v.superseded_at is None])
        created: list[str] = []
        async with self.registry.db.write() as session:
            entity_ids = {v.entity_id for v in versions}
            foreign = set(
                await session.scalars(
                    select(EntityVersion.entity_id).where(
                        EntityVersion.tenant != tenant, EntityVersion.entity_id.in_(list(entity_ids))
                    )
                )
            ) | set(
                await session.scalars(
                    select(EntityVersion.version_id).where(
                        EntityVersion.tenant != tenant, EntityVersion.version_id.in_(list(entities))
                    )
                )
            )
            for version in versions:
                if version.entity_id in foreign or version.version_id in foreign:
                    errors[entities[version.version_id][0]] = "this id is used by another tenant's entity"
            versions = [v for v in versions if errors[entities[v.version_id][0]] is None]
            if versions:
                await session.execute(
                    delete(EntityVersion).where(
                        EntityVersion.tenant == tenant,
                        or_(
                            EntityVersion.version_id.in_([v.version_id for v in versions]),
                            tuple_(EntityVersion.entity_id, EntityVersion.version).in_(
                                [(v.entity_id, v.version) for v in versions]
                            ),
                        ),
                    )
                )
                session.add_all(versions)
                await session.flush()
                kept = {v.entity_id for v in versions}
                await self.engine.write(session, tenant, KIND, [i for i in prepared if i.id in kept])
                created += sorted(kept)
            created += await self._import_relations(session, tenant, relations, errors)
        if created:
            await self.engine.emit(tenant, KIND, "created", created, {"imported": True})
        return errors

    async def _import_relations(
        self,
        session: AsyncSession,
        tenant: str,
        relations: dict[str, tuple[int, RelationRecord]],
        errors: list[str | None],
    ) -> list[str]:
        if not relations:
            return []
        ends = {str(r.source_id) for _, r in relations.values()} | {
            str(r.target_id) for _, r in relations.values()
        }
        known = set(
            await session.scalars(
                select(EntityVersion.entity_id).where(
                    EntityVersion.tenant == tenant, EntityVersion.entity_id.in_(list(ends))
                )
            )
        )
        foreign = set(
            await session.scalars(
                select(RelationRow.id).where(
                    RelationRow.tenant != tenant, RelationRow.id.in_(list(relations))
                )
            )
        )
        rows = []
        for relation_id, (position, record) in relations.items():
            missing = [str(e) for e in (record.source_id, record.target_id) if str(e) not in known]
            if missing:
                errors[position] = f"no entity with id {missing[0]} (import entities before their relations)"
            elif relation_id in foreign:
                errors[position] = "this id is used by another tenant's relation"
            else:
                rows.append(
                    {
                        "id": relation_id,
                        "tenant": tenant,
                        "source_id": str(record.source_id),
                        "target_id": str(record.target_id),
                        "type": record.type,
                        "weight": record.weight,
                        "activations": record.activations,
                        "meta": record.metadata,
                        "created_at": record.created_at,
                        "updated_at": record.updated_at,
                    }
                )
        if rows:
            await session.execute(
                delete(RelationRow).where(
                    RelationRow.tenant == tenant,
                    or_(
                        RelationRow.id.in_([r["id"] for r in rows]),
                        tuple_(RelationRow.source_id, RelationRow.target_id, RelationRow.type).in_(
                            [(r["source_id"], r["target_id"], r["type"]) for r in rows]
                        ),
                    ),
                )
            )
            await session.execute(insert(RelationRow), rows)
        return [r["id"] for r in rows]

    # -- search --------------------------------------------------------------------------------

    async def recall(
        self, tenant: str, query: str, *, k: int = 10, filters: Any = None, explain: bool = False
    ) -> list[FoundEntity]:
        return await self.search(tenant, EntitySearch(query=query, k=k, explain=explain, **(filters or {})))

    async def search(self, tenant: str, request: EntitySearch) -> list[FoundEntity]:
        filters = IndexFilters(
            user_id=request.user_id,
            agent_id=request.agent_id,
            metadata={"type": request.type} if request.type else {},
        )
        hits = await self.engine.recall(
            tenant, KIND, request.query, k=request.k, filters=filters, mode=request.mode
        )
        if not hits:
            return []
        statement = _current(tenant).where(EntityVersion.entity_id.in_([h.id for h in hits]))
        # One hand-off to a reader thread; plain values come back.
        entities = await self.registry.db.run_read(
            lambda session: {r.entity_id: _entity(r) for r in session.scalars(statement)}
        )
        found = [
            FoundEntity(
                entity=entities[h.id], score=h.score, explain=dict(h.parts) if request.explain else None
            )
            for h in hits
            if h.id in entities
        ]
        await self.engine.emit(
            tenant, KIND, "recalled", [f.entity.id for f in found], {"query": request.query}
        )
        return found

    # -- relations -----------------------------------------------------------------------------

    async def relate(self, tenant: str, request: RelationCreate) -> Relation:
        source, target = str(request.source_id), str(request.target_id)
        now = utcnow()
        row = RelationRow(
            id=new_id(),
            tenant=tenant,
            source_id=source,
            target_id=target,
            type=request.type,
            weight=request.weight,
            activations=0,
            meta=request.metadata,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.registry.db.write() as session:
                for entity_id in {source, target}:
                    await self._current_row(session, tenant, entity_id)
                session.add(row)
                await session.flush()
        except IntegrityError:
            raise Conflict(f"a {request.type!r} relation from {source} to {target} exists already") from None
        await self.engine.emit(
            tenant,
            KIND,
            "created",
            [row.id],
            {"relation": request.type, "source_id": source, "target_id": target, "weight": row.weight},
        )
        return _relation(row)

    async def relations(
        self, tenant: str, entity_id: str, *, direction: str, limit: int, cursor: str | None
    ) -> Page[Relation]:
        async with self.registry.db.read() as session:
            await self._current_row(session, tenant, entity_id)
            ends = {
                "out": RelationRow.source_id == entity_id,
                "in": RelationRow.target_id == entity_id,
                "both": or_(RelationRow.source_id == entity_id, RelationRow.target_id == entity_id),
            }[direction]
            query = select(RelationRow).where(RelationRow.tenant == tenant, ends)
            query = newest_first(query, RelationRow.created_at, RelationRow.id, limit=limit, cursor=cursor)
            rows = list(await session.scalars(query))
        return page_of_rows(rows, limit, _relation, lambda r: (r.created_at, r.id))

    async def iter_relations(self, tenant: str, *, batch: int = 1000) -> AsyncIterator[list[Relation]]:
        """Every relation of the tenant, in batches (for whole-graph views)."""
        last = ""
        while True:
            query = (
                select(RelationRow)
                .where(RelationRow.tenant == tenant, RelationRow.id > last)
                .order_by(RelationRow.id)
                .limit(batch)
            )
            async with self.registry.db.read() as session:
                rows = list(await session.scalars(query))
            if not rows:
                return
            last = rows[-1].id
            yield [_relation(row) for row in rows]

    # -- spreading activation ------------------------------------------------------------------

    async def spread(self, tenant: str, request: SpreadRequest) -> SpreadResult:
        seeds = list(dict.fromkeys(str(s) for s in request.seeds))
        activation = dict.fromkeys(seeds, 1.0)
        hops = dict.fromkeys(seeds, 0)
        strengthened: list[Strengthened] = []
        trace: list[SpreadStep] = []
        async with self.registry.db.write() as session:
            for seed in seeds:
                await self._current_row(session, tenant, seed)
            traversed: dict[str, RelationRow] = {}
            frontier = set(seeds)
            for hop in range(1, request.max_hops + 1):
                if not frontier:
                    break
                edges = await session.scalars(
                    select(RelationRow).where(
                        RelationRow.tenant == tenant,
                        or_(RelationRow.source_id.in_(frontier), RelationRow.target_id.in_(frontier)),
                    )
                )
                reached: set[str] = set()
                for edge in edges:
                    for here, there in ((edge.source_id, edge.target_id), (edge.target_id, edge.source_id)):
                        if here not in frontier:
                            continue
                        passed = activation[here] * edge.weight * (1 - request.decay)
                        if passed < request.threshold:
                            continue
                        traversed[edge.id] = edge
                        if passed > activation.get(there, 0.0):
                            step = SpreadStep(
                                hop=hop, relation_id=edge.id, from_id=here, to_id=there, activation=passed
                            )
                            trace.append(step)
                            activation[there] = passed
                            hops.setdefault(there, hop)
                            reached.add(there)
                frontier = reached
            if request.learning_rate > 0:
                now = utcnow()
                for edge in traversed.values():
                    a, b = activation.get(edge.source_id, 0.0), activation.get(edge.target_id, 0.0)
                    if a < request.threshold or b < request.threshold:
                        continue
                    before = edge.weight
                    edge.weight = min(1.0, before + request.learning_rate * a * b * (1 - before))
                    edge.activations += 1
                    edge.updated_at = now
                    strengthened.append(
                        Strengthened(
                            relation_id=edge.id,
                            source_id=edge.source_id,
                            target_id=edge.target_id,
                            weight_before=before,
                            weight_after=edge.weight,
                        )
                    )
            ranked = sorted(activation, key=lambda e: -activation[e])[: request.limit]
            rows = {
                r.entity_id: r
                for r in await session.scalars(_current(tenant).where(EntityVersion.entity_id.in_(ranked)))
            }
        activated = [
            Activated(entity=_entity(rows[e]), activation=activation[e], hops=hops[e])
            for e in ranked
            if e in rows
        ]
        if activated:
            await self.engine.reinforce(tenant, KIND, [a.entity.id for a in activated])
        if strengthened:
            await self.engine.emit(
                tenant,
                KIND,
                "updated",
                [s.relation_id for s in strengthened],
                {
                    "hebbian": len(strengthened),
                    "weights": {s.relation_id: s.weight_after for s in strengthened},
                },
            )
        return SpreadResult(activated=activated, strengthened=strengthened, trace=trace)
