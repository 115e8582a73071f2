from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from mnemogate.core.pagination import Page

MemoryKind = Literal["episodic", "semantic", "procedural"]
Threshold = Field(default=None, gt=0, le=1)


class SessionMemory(Page[dict[str, Any]]):
    """A session's episodes (newest first) and the memories injected into its requests."""

    session_id: str
    injections: list[dict[str, Any]] = Field(description="latest injections into the session's requests")


class KindStats(BaseModel):
    items: int
    archived: int
    never_recalled: int
    accesses: int


class Stats(BaseModel):
    total: int
    by_type: dict[str, KindStats]
    sessions: int = Field(description="sessions with episodes (among the scanned episodes)")
    captured: dict[str, int] = Field(description="episodes by source: gateway, mcp, other")
    scanned: int
    truncated: bool = Field(description="more episodes exist than scan_limit reads")


class ServerMemories(BaseModel):
    server: str
    memories: int
    tools: dict[str, int]
    failures: int
    last_at: datetime | None
    configured: bool


class SimilarityRequest(BaseModel):
    """Two texts (``text`` and ``other``), or a text against stored memories (``text`` alone)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=20_000)
    other: str | None = Field(default=None, min_length=1, max_length=20_000)
    types: list[MemoryKind] = Field(
        default_factory=lambda: ["episodic", "semantic", "procedural"], max_length=3
    )
    k: StrictInt = Field(default=5, ge=1, le=50)


class SimilarMemory(BaseModel):
    type: str
    id: str
    score: float
    text: str


class SimilarityResult(BaseModel):
    similarity: float | None = Field(default=None, description="cosine similarity of the two texts")
    matches: list[SimilarMemory] = Field(default_factory=list, description="stored memories like the text")


class CompressRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str | None = Field(default=None, max_length=128, description="only this session's episodes")
    duplicate_threshold: StrictFloat | None = Threshold
    cluster_threshold: StrictFloat | None = Threshold
    min_cluster_size: StrictInt = Field(default=3, ge=2, le=1000)
    dry_run: StrictBool = Field(default=True, description="report what would change, change nothing")


class Merge(BaseModel):
    kept: str
    merged: list[str]
    similarity: float


class Summary(BaseModel):
    label: str
    members: list[str]
    content: str
    summary_id: str | None = None


class CompressResult(BaseModel):
    dry_run: bool
    scanned: int
    merges: list[Merge]
    summaries: list[Summary]
    removed: int
    archived: int


class StoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=20_000)
    memory_type: MemoryKind = "episodic"
    name: str | None = Field(default=None, min_length=1, max_length=200, description="entity or skill name")
    session_id: str | None = Field(default=None, max_length=128)
    server: str | None = Field(default=None, max_length=128, description="the MCP server it concerns")
    tool: str | None = Field(default=None, max_length=200)
    importance: StrictFloat | None = Field(default=None, ge=0, le=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Stored(BaseModel):
    memory_type: str
    id: str
    item: dict[str, Any]


class Cluster(BaseModel):
    label: str
    keywords: list[str]
    size: int
    episode_ids: list[str]
    sample: str


class ClusterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: StrictFloat | None = Threshold


class ClusterResult(BaseModel):
    session_id: str
    episodes: int
    clusters: list[Cluster]


class SimilarSession(BaseModel):
    session_id: str
    similarity: float
    episodes: int


class SimilarSessions(BaseModel):
    session_id: str
    items: list[SimilarSession]
    scanned: int


class Distribution(BaseModel):
    buckets: dict[str, int]


class DecayState(BaseModel):
    archived: int
    never_recalled: int
    due_for_archive: int = Field(description="never recalled, old and unimportant enough for the next decay")


class AdvancedStats(BaseModel):
    total: int
    age: dict[str, Distribution]
    access: dict[str, Distribution]
    duplication_ratio: float = Field(description="share of scanned episodes with a near-duplicate")
    clusters: int = Field(description="clusters among the scanned episodes")
    decay: DecayState
    scanned: int


class CleanupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expired: StrictBool = Field(default=True, description="episodes whose metadata.expires_at has passed")
    older_than_days: StrictFloat | None = Field(
        default=None, gt=0, le=36_500, description="also count episodes older than this as expired"
    )
    duplicates: StrictBool = Field(
        default=True, description="episodes repeating one of the same session word for word"
    )
    orphaned: StrictBool = Field(
        default=True, description="episodes of gateway sessions that no longer exist"
    )
    dry_run: StrictBool = True


class CleanupResult(BaseModel):
    dry_run: bool
    scanned: int
    expired: list[str]
    duplicates: list[str]
    orphaned: list[str]
    removed: int
