from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from sqlalchemy import JSON, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime
from mnemogate.core.fields import Timestamp


class Base(DeclarativeBase):
    pass


class EntityVersion(Base):
    """One version of an entity. Valid time (``valid_from``/``valid_to``: when the facts hold in
    the world) and transaction time (``recorded_at``/``superseded_at``: when this store believed
    them); the current version is the one not superseded."""

    __tablename__ = "semantic_entity_versions"
    __table_args__ = (
        UniqueConstraint("tenant", "entity_id", "version", name="ux_semantic_entity_versions"),
        Index("ix_semantic_entity_versions_current", "tenant", "superseded_at", "recorded_at", "entity_id"),
    )

    version_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(36))
    tenant: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(256))
    type: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RelationRow(Base):
    __tablename__ = "semantic_relations"
    __table_args__ = (
        UniqueConstraint("tenant", "source_id", "target_id", "type", name="ux_semantic_relations"),
        Index("ix_semantic_relations_source", "tenant", "source_id"),
        Index("ix_semantic_relations_target", "tenant", "target_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(36))
    target_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float)
    activations: Mapped[int] = mapped_column(Integer, default=0)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


Name = Field(min_length=1, max_length=256)
TypeName = Field(default="thing", min_length=1, max_length=64)
OptionalId = Field(default=None, max_length=128)


class EntityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Name
    type: str = TypeName
    description: str = Field(default="", max_length=20_000)
    attributes: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    user_id: str | None = OptionalId
    agent_id: str | None = OptionalId
    valid_from: Timestamp | None = Field(default=None, description="since when the facts hold (default: now)")
    valid_to: Timestamp | None = None


class EntityUpdate(BaseModel):
    """Fields left out keep their value; the result is a new version."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=256)
    type: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=20_000)
    attributes: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    valid_from: Timestamp | None = Field(
        default=None,
        description="since when the new facts hold (default: now); ends the old version's validity",
    )
    valid_to: Timestamp | None = None


class Entity(BaseModel):
    id: str
    version: int
    name: str
    type: str
    description: str
    attributes: dict[str, Any]
    metadata: dict[str, Any]
    user_id: str | None
    agent_id: str | None
    valid_from: datetime
    valid_to: datetime | None
    recorded_at: datetime
    superseded_at: datetime | None


class RelationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_id: uuid.UUID
    target_id: uuid.UUID
    type: str = Field(min_length=1, max_length=64)
    weight: StrictFloat = Field(default=0.5, gt=0, le=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Relation(BaseModel):
    id: str
    source_id: str
    target_id: str
    type: str
    weight: float
    activations: int
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class EntitySearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=10_000)
    k: StrictInt = Field(default=10, ge=1, le=100)
    type: str | None = Field(default=None, max_length=64)
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    user_id: str | None = OptionalId
    agent_id: str | None = OptionalId
    explain: StrictBool = False


class FoundEntity(BaseModel):
    entity: Entity
    score: float
    explain: dict[str, float] | None = None


class SearchResult(BaseModel):
    items: list[FoundEntity]


class SpreadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seeds: list[uuid.UUID] = Field(min_length=1, max_length=50, description="entities activated at 1.0")
    max_hops: StrictInt = Field(default=3, ge=1, le=6)
    decay: StrictFloat = Field(default=0.2, ge=0, lt=1, description="share of activation lost per hop")
    threshold: StrictFloat = Field(
        default=0.1, gt=0, le=1, description="activation below this does not spread"
    )
    learning_rate: StrictFloat = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Hebbian rate: co-activated relations gain rate*a*b*(1-w); 0: off",
    )
    limit: StrictInt = Field(default=50, ge=1, le=500, description="activated entities returned")


class Activated(BaseModel):
    entity: Entity
    activation: float
    hops: int


class Strengthened(BaseModel):
    relation_id: str
    source_id: str
    target_id: str
    weight_before: float
    weight_after: float


class SpreadStep(BaseModel):
    """Activation passed along one relation at one hop, raising what its target had."""

    hop: int
    relation_id: str
    from_id: str
    to_id: str
    activation: float = Field(description="what arrived at to_id over this relation")


class SpreadResult(BaseModel):
    activated: list[Activated]
    strengthened: list[Strengthened]
    trace: list[SpreadStep] = Field(description="hop by hop, the relations that raised an activation")


class EntityRecord(BaseModel):
    """One entity version as the persistence plugin's export writes it and its import reads it."""

    model_config = ConfigDict(extra="forbid")

    record: Literal["entity"]
    id: uuid.UUID
    version_id: uuid.UUID
    version: StrictInt = Field(ge=1)
    name: str = Name
    type: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=20_000)
    attributes: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    user_id: str | None = OptionalId
    agent_id: str | None = OptionalId
    valid_from: Timestamp
    valid_to: Timestamp | None = None
    recorded_at: Timestamp
    superseded_at: Timestamp | None = None


class RelationRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record: Literal["relation"]
    id: uuid.UUID
    source_id: uuid.UUID
    target_id: uuid.UUID
    type: str = Field(min_length=1, max_length=64)
    weight: StrictFloat = Field(ge=0, le=1)
    activations: StrictInt = Field(default=0, ge=0)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: Timestamp
    updated_at: Timestamp
