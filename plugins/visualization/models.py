"""Request and response schemas of the views (the plugin has no tables: it reads the memory
types, the semantic graph and the request log through their services)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

MemoryTypeName = Literal["episodic", "semantic", "procedural"]
MEMORY_TYPES: tuple[MemoryTypeName, ...] = ("episodic", "semantic", "procedural")
Bucket = Literal["hour", "day"]


@dataclass(frozen=True)
class Selection:
    """What a view shows: memory types, a user, a session (episodes only: entities and skills
    belong to no session) and a time range (when the memory happened or was recorded)."""

    kinds: tuple[MemoryTypeName, ...] = MEMORY_TYPES
    user_id: str | None = None
    session_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 2000


@dataclass
class Item:
    """One memory as the views see it."""

    id: str
    memory_type: MemoryTypeName
    label: str
    group: str
    at: datetime
    user_id: str | None
    session_id: str | None
    importance: float
    extra: dict[str, Any] = field(default_factory=dict)


# -- graph --------------------------------------------------------------------------------------


class Node(BaseModel):
    id: str
    memory_type: MemoryTypeName
    label: str = Field(description="entity or skill name, the start of an episode")
    group: str = Field(description="entity type, episode role, or 'skill'")
    x: float
    y: float
    z: float
    at: datetime = Field(description="when it happened (episodes) or was recorded")
    user_id: str | None
    session_id: str | None
    importance: float
    access_count: int
    strength: float = Field(description="ACT-R retrieval probability now (0..1): accesses, decayed")


class Edge(BaseModel):
    id: str
    source: str
    target: str
    kind: Literal["relation", "session"] = Field(
        description="a semantic relation, or consecutive episodes of a session"
    )
    type: str
    weight: float
    activations: int = Field(description="spreading-activation runs that strengthened it")


class Graph(BaseModel):
    nodes: list[Node]
    edges: list[Edge]
    counts: dict[str, int] = Field(description="nodes per memory type")
    truncated: bool = Field(description="more memories matched than limit; the newest are shown")
    layout_steps: int
    layout_ms: float
    cached: bool = False
    generated_at: datetime


# -- embeddings ---------------------------------------------------------------------------------


class Point(BaseModel):
    id: str
    memory_type: MemoryTypeName
    label: str
    x: float
    y: float
    z: float


class Projection(BaseModel):
    method: Literal["pca"] = "pca"
    points: list[Point]
    explained_variance: list[float] = Field(description="share of the variance of each axis")
    dimensions: int = Field(description="of the embedding vectors")
    truncated: bool


# -- spreading activation -----------------------------------------------------------------------


class TraceRequest(BaseModel):
    """A spreading-activation run (the semantic plugin's), watched hop by hop. Learning is off by
    default: a dry run leaves the relation weights as they are."""

    model_config = ConfigDict(extra="forbid")

    seeds: list[uuid.UUID] = Field(min_length=1, max_length=50, description="entities activated at 1.0")
    max_hops: StrictInt = Field(default=3, ge=1, le=6)
    decay: StrictFloat = Field(default=0.2, ge=0, lt=1, description="share of activation lost per hop")
    threshold: StrictFloat = Field(
        default=0.1, gt=0, le=1, description="activation below this does not spread"
    )
    learning_rate: StrictFloat = Field(
        default=0.0, ge=0, le=1, description="Hebbian strengthening of the relations used; 0: off"
    )
    limit: StrictInt = Field(default=200, ge=1, le=500, description="activated entities returned")


class LitNode(BaseModel):
    id: str
    label: str
    hop: int = Field(description="the hop that first reached it (0: a seed)")
    activation: float


class TraceStep(BaseModel):
    hop: int
    relation_id: str
    source: str = Field(description="the entity the activation came from")
    target: str = Field(description="the entity it reached")
    activation: float = Field(description="what arrived over this relation")


class WeightChange(BaseModel):
    relation_id: str
    source: str
    target: str
    before: float
    after: float


class Trace(BaseModel):
    nodes: list[LitNode]
    steps: list[TraceStep]
    hops: int = Field(description="the deepest hop that lit a node")
    strengthened: list[WeightChange]


# -- time series --------------------------------------------------------------------------------


class Histogram(BaseModel):
    edges: list[float] = Field(description="bin edges (one more than counts)")
    counts: dict[str, list[int]] = Field(description="per memory type (or 'relations')")


class MemorySeries(BaseModel):
    added: dict[str, list[int]] = Field(description="memories that entered the store in each bucket")
    total: dict[str, list[int]] = Field(description="memories in the store at the end of each bucket")
    archived: dict[str, int] = Field(description="memories archived by decay (kept, left out of recall)")


class RecallSeries(BaseModel):
    last_recalled: dict[str, list[int]] = Field(
        description="memories whose most recent recall falls in each bucket"
    )
    access_counts: Histogram = Field(description="how often memories were recalled")
    recalls_total: dict[str, int]


class StrengthSeries(BaseModel):
    retrieval: Histogram = Field(description="ACT-R retrieval probability now: accesses, decayed")
    importance: Histogram


class HebbianSeries(BaseModel):
    strengthened: list[int] = Field(description="relations last strengthened in each bucket")
    weights: Histogram
    activations_total: int = Field(description="strengthenings of all relations so far")
    relations: int


class ConsolidationSeries(BaseModel):
    available: bool = Field(description="whether the consolidation plugin runs")
    runs: int = Field(default=0, description="consolidation runs of the tenant so far")
    last_run_at: datetime | None = None
    last_result: dict[str, Any] | None = Field(default=None, description="what the last run did")


class Series(BaseModel):
    bucket: Bucket
    since: datetime
    until: datetime
    times: list[datetime] = Field(description="the start of each bucket")
    memory: MemorySeries
    recalls: RecallSeries
    strength: StrengthSeries
    hebbian: HebbianSeries
    consolidation: ConsolidationSeries
    truncated: bool


# -- gateway usage ------------------------------------------------------------------------------


class ModelUsage(BaseModel):
    model: str
    requests: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


class LoggedRequest(BaseModel):
    id: str
    session_id: str | None
    provider: str | None
    model: str | None
    status: int
    stream: bool
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    latency_ms: float | None
    error: str | None
    created_at: datetime


class Usage(BaseModel):
    bucket: Bucket
    since: datetime
    until: datetime
    times: list[datetime]
    requests: list[int]
    errors: list[int]
    tokens_in: list[int]
    tokens_out: list[int]
    cost_usd: list[float]
    models: list[ModelUsage]
    recent: list[LoggedRequest] = Field(description="the latest requests of the range, newest first")
